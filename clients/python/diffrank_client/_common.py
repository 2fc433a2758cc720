"""What the sync and asyncio clients share: request building, metadata, the retry policy."""
from __future__ import annotations

import dataclasses
import random
from typing import Iterable, Iterator, Mapping, Optional, Sequence

import grpc

from diffrank.v1 import diffrank_pb2 as pb

Document = Mapping[str, str]  # {"id", "text", optional "title", "metadata" (JSON object text)}


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Retries of idempotent calls answered UNAVAILABLE (exponential back-off, full jitter)."""
    max_attempts: int = 4
    initial_backoff: float = 0.1  # seconds
    max_backoff: float = 2.0

    def delays(self) -> Iterator[float]:
        """Sleep before each retry: uniform in [0, backoff], backoff doubling up to the cap."""
        backoff = self.initial_backoff
        for _ in range(self.max_attempts - 1):
            yield random.uniform(0, backoff)
            backoff = min(backoff * 2, self.max_backoff)


def retryable(error: grpc.RpcError) -> bool:
    return error.code() == grpc.StatusCode.UNAVAILABLE


def metadata(api_key: Optional[str]) -> list:
    return [("authorization", f"Bearer {api_key}")] if api_key else []


def upsert_batches(collection: str, documents: Sequence[Document],
                   batch_size: int) -> Iterable[pb.UpsertRequest]:
    if not 1 <= batch_size <= 256:
        raise ValueError("batch_size must be 1..256")
    for s in range(0, len(documents), batch_size):
        yield pb.UpsertRequest(collection=collection,
                               documents=[pb.Document(**d) for d in documents[s:s + batch_size]])


def search_request(collection: str, query: str, **kw) -> pb.SearchRequest:
    return pb.SearchRequest(collection=collection, query=query, **kw)
