"""The blocking client (grpc)."""
from __future__ import annotations

import time
from typing import Iterator, Optional, Sequence

import grpc

from diffrank.v1 import diffrank_pb2 as pb
from diffrank.v1 import diffrank_pb2_grpc as pb_grpc

from ._common import (Document, Filter, Mode, RetryPolicy, json_text, metadata, retryable,
                      search_request, upsert_batches)


class Client:
    """Typed calls of diffrank.v1.Diffrank over one channel (thread-safe)."""

    def __init__(self, target: str, api_key: Optional[str] = None, timeout: float = 30.0,
                 credentials: Optional[grpc.ChannelCredentials] = None,
                 retry: RetryPolicy = RetryPolicy()):
        options = [("grpc.max_receive_message_length", -1)]
        self.channel = (grpc.secure_channel(target, credentials, options) if credentials
                        else grpc.insecure_channel(target, options))
        self.stub = pb_grpc.DiffrankStub(self.channel)
        self.metadata = metadata(api_key)
        self.timeout = timeout
        self.retry = retry

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def _kw(self, timeout: Optional[float]) -> dict:
        return {"metadata": self.metadata, "timeout": timeout or self.timeout}

    def _idempotent(self, method, request, timeout: Optional[float]):
        end = time.monotonic() + (timeout or self.timeout)
        delays = self.retry.delays()
        while True:
            left = end - time.monotonic()
            try:
                return method(request, metadata=self.metadata, timeout=max(left, 0.001))
            except grpc.RpcError as e:
                delay = next(delays, None) if retryable(e) else None
                if delay is None or time.monotonic() + delay >= end:
                    raise
                time.sleep(delay)

    # Collections
    def create_collection(self, name: str, index: str = "Flat", model: str = "",
                          timeout: Optional[float] = None) -> pb.CollectionInfo:
        """model: the embedder's id ("" = the server's default, the newest)."""
        return self.stub.CreateCollection(
            pb.CreateCollectionRequest(name=name, index=index, model=model), **self._kw(timeout))

    def list_collections(self, timeout: Optional[float] = None) -> pb.ListCollectionsResponse:
        return self._idempotent(self.stub.ListCollections, pb.ListCollectionsRequest(), timeout)

    def drop_collection(self, name: str, timeout: Optional[float] = None) -> None:
        self.stub.DropCollection(pb.DropCollectionRequest(name=name), **self._kw(timeout))

    def stats(self, name: str, timeout: Optional[float] = None) -> pb.CollectionStatsResponse:
        return self._idempotent(self.stub.CollectionStats, pb.CollectionStatsRequest(name=name),
                                timeout)

    def publish(self, name: str, version: str,
                timeout: Optional[float] = None) -> pb.CollectionInfo:
        return self.stub.PublishCollection(pb.PublishCollectionRequest(name=name, version=version),
                                           **self._kw(timeout))

    # Documents
    def upsert(self, collection: str, documents: Sequence[Document], batch_size: int = 64,
               timeout: Optional[float] = None) -> pb.UpsertResponse:
        """Streams documents in batches; each batch is committed atomically (never retried:
        on an error the earlier batches are committed, and sending all again is safe)."""
        return self.stub.Upsert(upsert_batches(collection, documents, batch_size),
                                **self._kw(timeout))

    def get(self, collection: str, ids: Sequence[str] = (), timeout: Optional[float] = None, *,
            cursor: str = "", limit: int = 0) -> pb.GetResponse:
        """By ids, or a page of the collection in id order (ids empty, limit and/or cursor;
        next_cursor continues, "" at the end)."""
        req = pb.GetRequest(collection=collection, ids=list(ids), cursor=cursor, limit=limit)
        return self._idempotent(self.stub.Get, req, timeout)

    def scan(self, collection: str, page_size: int = 100,
             timeout: Optional[float] = None) -> Iterator[pb.Document]:
        """Every document of a collection, in id order, a page per call."""
        cursor = ""
        while True:
            page = self.get(collection, cursor=cursor, limit=page_size, timeout=timeout)
            yield from page.documents
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def delete(self, collection: str, ids: Sequence[str] = (), filter: Optional[Filter] = None,
               timeout: Optional[float] = None) -> pb.DeleteResponse:
        """By ids (retried: idempotent) or by a JSON metadata filter (not retried)."""
        req = pb.DeleteRequest(collection=collection, ids=list(ids), filter=json_text(filter))
        if filter:
            return self.stub.Delete(req, **self._kw(timeout))
        return self._idempotent(self.stub.Delete, req, timeout)

    # Retrieval and models
    def search(self, collection: str, query: str, timeout: Optional[float] = None, *,
               top_k: int = 0, offset: int = 0, mode: Mode = 0, candidates: int = 0,
               rerank: Optional[bool] = None, rerank_depth: Optional[int] = None,
               filter: Optional[Filter] = None, include_text: bool = False,
               include_metadata: bool = False, rerank_fusion_weight: Optional[float] = None,
               text_max_bytes: int = 0, query_vector: Sequence[float] = (),
               query_vector_model: str = "") -> pb.SearchResponse:
        """The SearchRequest fields (proto/diffrank/v1/diffrank.proto); filter as a dict or
        JSON text, mode as pb.SEARCH_MODE_* or "hybrid" | "dense" | "lexical"."""
        req = search_request(collection, query, top_k=top_k, offset=offset, mode=mode,
                             candidates=candidates, rerank=rerank,
                             rerank_depth=rerank_depth, filter=filter, include_text=include_text,
                             include_metadata=include_metadata,
                             rerank_fusion_weight=rerank_fusion_weight,
                             text_max_bytes=text_max_bytes, query_vector=query_vector,
                             query_vector_model=query_vector_model)
        return self._idempotent(self.stub.Search, req, timeout)

    def rerank(self, query: str, documents: Sequence[str], top_n: int = 0,
               return_documents: bool = False, timeout: Optional[float] = None,
               **kw) -> pb.RerankResponse:
        req = pb.RerankRequest(query=query, documents=documents, top_n=top_n,
                               return_documents=return_documents, **kw)
        return self._idempotent(self.stub.Rerank, req, timeout)

    def embed(self, texts: Sequence[str], kind: int = pb.EMBED_KIND_DOCUMENT,
              timeout: Optional[float] = None, **kw) -> pb.EmbedResponse:
        return self._idempotent(self.stub.Embed, pb.EmbedRequest(texts=texts, kind=kind, **kw),
                                timeout)

    def info(self, timeout: Optional[float] = None) -> pb.InfoResponse:
        return self._idempotent(self.stub.Info, pb.InfoRequest(), timeout)
