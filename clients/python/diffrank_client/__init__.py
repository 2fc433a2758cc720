"""diffrank Python client: typed calls over the generated gRPC stubs, sync and asyncio.

    from diffrank_client import Client
    c = Client("127.0.0.1:50051", api_key=os.environ["DIFFRANK_API_KEY"])
    c.create_collection("docs")
    c.upsert("docs", [{"id": "1", "text": "hello"}])
    for hit in c.search("docs", "greeting", top_k=5).hits:
        print(hit.id, hit.score)

    from diffrank_client import AsyncClient          # the same calls, awaited
    async with AsyncClient("127.0.0.1:50051") as c:
        r = await c.search("docs", "greeting")

Every call has a deadline (``timeout`` seconds, default 30). Errors are ``grpc.RpcError``
(``grpc.aio.AioRpcError`` for AsyncClient) with the server's status code and message
(proto/diffrank/v1/diffrank.proto documents them). Idempotent calls (search, rerank, embed,
get, delete by ids, list_collections, stats, info) answered UNAVAILABLE are retried with
exponential back-off and full jitter, within the call's deadline (the C++ client's policy);
writes that are not idempotent as a whole are never retried.

Install: ``pip install clients/python`` (the stubs are generated from proto/ at build time)
or, in this repository, ``clients/python/generate.sh`` and put clients/python on sys.path.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "gen"))
from diffrank.v1 import diffrank_pb2 as pb  # noqa: E402
from diffrank.v1 import diffrank_pb2_grpc as pb_grpc  # noqa: E402

from ._sync import Client, RetryPolicy  # noqa: E402
from ._aio import AsyncClient  # noqa: E402

__all__ = ["AsyncClient", "Client", "RetryPolicy", "pb", "pb_grpc"]
__version__ = "0.1.0"
