"""What the sync and asyncio clients share: request building, metadata, the retry policy."""
from __future__ import annotations

import dataclasses
import json
import random
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence, Union

import grpc

from diffrank.v1 import diffrank_pb2 as pb

# {"id", "text", optional "title", "metadata" (a dict, or JSON object text)}
Document = Mapping[str, Any]
# A metadata filter: a dict such as {"field": "lang", "eq": "en"}, or its JSON text.
Filter = Union[str, Mapping[str, Any]]
# A search mode: pb.SEARCH_MODE_DENSE, its name, or "hybrid" | "dense" | "lexical".
Mode = Union[int, str]
_MODES = {"hybrid": pb.SEARCH_MODE_HYBRID, "dense": pb.SEARCH_MODE_DENSE,
          "lexical": pb.SEARCH_MODE_LEXICAL}


def json_text(value: Union[str, Mapping[str, Any], Sequence[Any], None]) -> str:
    """JSON text for a field the API takes as JSON (filter, metadata): dicts are dumped."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def search_mode(mode: Mode) -> int:
    if isinstance(mode, str):
        if mode in pb.SearchMode.keys():  # "SEARCH_MODE_DENSE"
            return pb.SearchMode.Value(mode)
        if mode.lower() not in _MODES:
            raise ValueError(f"mode must be one of {sorted(_MODES)} (got {mode!r})")
        return _MODES[mode.lower()]
    return int(mode)


def document(d: Document) -> pb.Document:
    d = dict(d)
    if "metadata" in d:
        d["metadata"] = json_text(d["metadata"])
    return pb.Document(**d)


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
                               documents=[document(d) for d in documents[s:s + batch_size]])


def search_request(collection: str, query: str, *, top_k: int = 0, offset: int = 0,
                   mode: Mode = 0,
                   candidates: int = 0, rerank: Optional[bool] = None,
                   rerank_depth: Optional[int] = None, filter: Optional[Filter] = None,
                   include_text: bool = False, include_metadata: bool = False,
                   rerank_fusion_weight: Optional[float] = None, text_max_bytes: int = 0,
                   query_vector: Sequence[float] = (),
                   query_vector_model: str = "") -> pb.SearchRequest:
    """A SearchRequest; unset optional fields take the server's defaults (proto comments)."""
    req = pb.SearchRequest(collection=collection, query=query, top_k=top_k, offset=offset,
                           mode=search_mode(mode), candidates=candidates,
                           filter=json_text(filter), include_text=include_text,
                           include_metadata=include_metadata, text_max_bytes=text_max_bytes,
                           query_vector=list(query_vector),
                           query_vector_model=query_vector_model)
    if rerank is not None:
        req.rerank = rerank
    if rerank_depth is not None:
        req.rerank_depth = rerank_depth
    if rerank_fusion_weight is not None:
        req.rerank_fusion_weight = rerank_fusion_weight
    return req
