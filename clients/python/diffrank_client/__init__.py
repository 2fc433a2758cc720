"""diffrank Python client: a thin wrapper over the generated gRPC stubs.

    from diffrank_client import Client
    c = Client("127.0.0.1:50051", api_key=None)
    c.create_collection("docs")
    c.upsert("docs", [{"id": "1", "text": "hello"}])
    for hit in c.search("docs", "greeting", top_k=5).hits: print(hit.id, hit.score)

Every call has a deadline (timeout seconds, default 30). Errors are
grpc.RpcError with the server's status code and message. Stubs are generated
by clients/python/generate.sh into diffrank_client/gen.
"""
import os
import sys

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "gen"))
from diffrank.v1 import diffrank_pb2 as pb  # noqa: E402
from diffrank.v1 import diffrank_pb2_grpc as pb_grpc  # noqa: E402

__all__ = ["Client", "pb", "pb_grpc"]


class Client:
    def __init__(self, target, api_key=None, timeout=30.0, credentials=None):
        if credentials is not None:
            self.channel = grpc.secure_channel(target, credentials)
        else:
            self.channel = grpc.insecure_channel(target)
        self.stub = pb_grpc.DiffrankStub(self.channel)
        self.metadata = [("authorization", f"Bearer {api_key}")] if api_key else []
        self.timeout = timeout

    def _kw(self, timeout):
        return {"metadata": self.metadata, "timeout": timeout or self.timeout}

    def close(self):
        self.channel.close()

    def create_collection(self, name, index="Flat", timeout=None):
        return self.stub.CreateCollection(pb.CreateCollectionRequest(name=name, index=index),
                                          **self._kw(timeout))

    def list_collections(self, timeout=None):
        return self.stub.ListCollections(pb.ListCollectionsRequest(), **self._kw(timeout))

    def drop_collection(self, name, timeout=None):
        return self.stub.DropCollection(pb.DropCollectionRequest(name=name), **self._kw(timeout))

    def stats(self, name, timeout=None):
        return self.stub.CollectionStats(pb.CollectionStatsRequest(name=name), **self._kw(timeout))

    def upsert(self, collection, documents, batch_size=64, timeout=None):
        """Streams documents (dicts with id, text, optional title/metadata) in batches."""
        def batches():
            for s in range(0, len(documents), batch_size):
                yield pb.UpsertRequest(collection=collection, documents=[
                    pb.Document(**d) for d in documents[s:s + batch_size]])
        return self.stub.Upsert(batches(), **self._kw(timeout))

    def search(self, collection, query, timeout=None, **kw):
        return self.stub.Search(pb.SearchRequest(collection=collection, query=query, **kw),
                                **self._kw(timeout))

    def rerank(self, query, documents, top_n=0, return_documents=False, timeout=None, **kw):
        return self.stub.Rerank(pb.RerankRequest(query=query, documents=documents, top_n=top_n,
                                                 return_documents=return_documents, **kw),
                                **self._kw(timeout))

    def embed(self, texts, kind=pb.EMBED_KIND_DOCUMENT, timeout=None, **kw):
        return self.stub.Embed(pb.EmbedRequest(texts=texts, kind=kind, **kw), **self._kw(timeout))

    def get(self, collection, ids, timeout=None):
        return self.stub.Get(pb.GetRequest(collection=collection, ids=ids), **self._kw(timeout))

    def delete(self, collection, ids=(), filter="", timeout=None):
        return self.stub.Delete(pb.DeleteRequest(collection=collection, ids=list(ids),
                                                 filter=filter), **self._kw(timeout))

    def info(self, timeout=None):
        return self.stub.Info(pb.InfoRequest(), **self._kw(timeout))
