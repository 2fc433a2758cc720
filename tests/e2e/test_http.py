"""The HTTP/JSON front (service/http_api.h) called by the real SDKs and a RAG framework's own
integration class, against the same server's gRPC answers for the same inputs; errors, keys,
limits and deadlines on the HTTP side."""
import json
import os

import cohere
import grpc
import httpx
import pytest
from langchain_openai import OpenAIEmbeddings
from openai import OpenAI

from server import KEYS, Server, free_port
from diffrank_client import Client, pb

DOCS = ["Paris is the capital and largest city of France.",
        "Tea is brewed by pouring hot water over dried leaves.",
        "The Eiffel Tower is a wrought-iron lattice tower in Paris.",
        "Bread is baked from flour, water and yeast."]
QUERY = "What is the capital of France?"


@pytest.fixture(scope="module")
def srv():
    port = free_port()
    s = Server(extra_args=["--http_listen", f"127.0.0.1:{port}"])
    s.http = f"http://127.0.0.1:{port}"
    yield s
    s.close()


def grpc_embed(s, texts):
    r = Client(s.target, api_key=KEYS["read"]).embed(texts, kind=pb.EMBED_KIND_DOCUMENT)
    return [list(e.values) for e in r.embeddings], sum(e.tokens for e in r.embeddings)


def close(a, b, tol=1e-6):
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b))


def test_openai_sdk_embeddings_equal_grpc(srv):
    want, tokens = grpc_embed(srv, DOCS)
    client = OpenAI(api_key=KEYS["read"], base_url=srv.http + "/v1")
    for fmt in ("float", "base64"):  # the SDK asks for base64 by default and decodes it
        kw = {"encoding_format": fmt} if fmt == "float" else {}
        r = client.embeddings.create(model="diffrank-embed-v3", input=DOCS, **kw)
        assert [d.index for d in r.data] == list(range(len(DOCS)))
        for d, w in zip(r.data, want):
            assert close(d.embedding, w), fmt
        assert r.usage.prompt_tokens == tokens == r.usage.total_tokens
        assert r.model == "diffrank-embed-v3"
    # Any other name (OpenAI SDKs always send one) gets the default embedder.
    one = client.embeddings.create(model="m", input=DOCS[0], encoding_format="float")
    assert close(one.data[0].embedding, want[0])
    assert one.model == "diffrank-embed-v3"
    # A model the server has loaded is used when named.
    Client(srv.target, api_key=KEYS["read"]).embed(["load it"], model="diffrank-embed-v2")
    old = client.embeddings.create(model="diffrank-embed-v2", input=DOCS[0],
                                   encoding_format="float")
    assert old.model == "diffrank-embed-v2"
    assert not close(old.data[0].embedding, want[0], 1e-2)
    ids = [m.id for m in client.models.list().data]
    assert "diffrank-embed-v2" in ids and "diffrank-embed-v3" in ids, ids
    # More texts than one gRPC call takes are split, in order.
    many = [f"text number {i}" for i in range(300)]
    r = client.embeddings.create(model="m", input=many, encoding_format="float")
    assert len(r.data) == 300 and r.data[299].index == 299
    assert close(r.data[299].embedding, grpc_embed(srv, [many[299]])[0][0])


def test_langchain_openai_embeddings_class(srv):
    want, _ = grpc_embed(srv, DOCS)
    emb = OpenAIEmbeddings(model="diffrank-embed-v3", base_url=srv.http + "/v1",
                           api_key=KEYS["read"], check_embedding_ctx_length=False)
    got = emb.embed_documents(DOCS)
    assert all(close(g, w, 1e-5) for g, w in zip(got, want))
    assert close(emb.embed_query(DOCS[0]), want[0], 1e-5)


def test_cohere_sdk_rerank_v1_and_v2_equal_grpc(srv):
    want = Client(srv.target, api_key=KEYS["read"]).rerank(QUERY, DOCS).results
    want = [(r.index, r.relevance_score) for r in want]
    co = cohere.Client(api_key=KEYS["read"], base_url=srv.http)
    r = co.rerank(model="diffrank-rerank-v2", query=QUERY, documents=DOCS, top_n=3,
                  return_documents=True)
    assert [(x.index, round(x.relevance_score, 6)) for x in r.results] == \
        [(i, round(s, 6)) for i, s in want[:3]]
    assert r.results[0].document.text == DOCS[want[0][0]]
    co2 = cohere.ClientV2(api_key=KEYS["read"], base_url=srv.http)
    r2 = co2.rerank(model="diffrank-rerank-v2", query=QUERY, documents=DOCS)
    assert [x.index for x in r2.results] == [i for i, _ in want]


def test_relevance_scores_read_as_probabilities(srv):
    """Issue 24: Cohere's relevance_score is read as a probability. The one-letter document "a"
    scored 0.934 for the query "compress" (the plain sigmoid of the logit) while real answers
    scored 0.60-0.68. With the reranker's calibration (fitted on dl21, model card) junk scores
    low and below the real answers; an empty document is refused, naming it."""
    co = cohere.Client(api_key=KEYS["read"], base_url=srv.http)
    relevant = ["gzip reduces the size of files using Lempel-Ziv coding",
                "xz is a general-purpose data compression tool with a high compression ratio"]
    junk = ["a", "banana", "The Eiffel Tower is in Paris."]
    for query in ("compress", "how do I compress files?"):
        r = co.rerank(model="diffrank-rerank-v2", query=query, documents=relevant + junk)
        score = {x.index: x.relevance_score for x in r.results}
        assert min(score[i] for i in range(2)) > max(score[i] for i in range(2, 5)), score
        assert all(score[i] < 0.1 for i in range(2, 5)), score
        assert all(0 < v < 1 for v in score.values()), score
    with pytest.raises(Exception) as e:
        co.rerank(model="diffrank-rerank-v2", query="compress", documents=["ok", " "])
    assert "documents[1]" in str(e.value)


def test_haystack_cohere_ranker_and_openai_embedder_classes(srv, monkeypatch):
    """Haystack's own integration classes pointed at diffrank: CohereRanker (cohere-haystack,
    Cohere v2 rerank with api_base_url) in a Pipeline, and OpenAITextEmbedder."""
    monkeypatch.setenv("HAYSTACK_TELEMETRY_ENABLED", "False")
    from haystack import Document, Pipeline
    from haystack.components.embedders import OpenAIDocumentEmbedder, OpenAITextEmbedder
    from haystack.utils import Secret
    from haystack_integrations.components.rankers.cohere import CohereRanker

    want = Client(srv.target, api_key=KEYS["read"]).rerank(QUERY, DOCS).results
    key = Secret.from_token(KEYS["read"])
    p = Pipeline()
    p.add_component("ranker", CohereRanker(model="diffrank-rerank-v2", api_key=key,
                                           api_base_url=srv.http, top_k=3))
    docs = [Document(content=t, meta={"i": i}) for i, t in enumerate(DOCS)]
    out = p.run({"ranker": {"query": QUERY, "documents": docs}})["ranker"]["documents"]
    assert [(d.meta["i"], round(d.score, 6)) for d in out] == \
        [(r.index, round(r.relevance_score, 6)) for r in want[:3]]
    # Embeddings through Haystack's OpenAI embedders equal gRPC Embed (the OpenAI route embeds
    # as documents unless the body says "input_type": "query"; OpenAI's API has no kind).
    want_emb, _ = grpc_embed(srv, DOCS)
    text = OpenAITextEmbedder(api_key=key, model="diffrank-embed-v3", api_base_url=srv.http + "/v1")
    assert close(text.run(DOCS[0])["embedding"], want_emb[0], 1e-5)
    doc_emb = OpenAIDocumentEmbedder(api_key=key, model="diffrank-embed-v3",
                                     api_base_url=srv.http + "/v1")
    got = doc_emb.run([Document(content=t) for t in DOCS])["documents"]
    assert all(close(g.embedding, w, 1e-5) for g, w in zip(got, want_emb))


def test_tei_routes(srv):
    want, _ = grpc_embed(srv, DOCS[:2])
    with httpx.Client(base_url=srv.http, headers={"Authorization": f"Bearer {KEYS['read']}"}) as h:
        r = h.post("/embed", json={"inputs": DOCS[:2]})
        assert r.status_code == 200 and all(close(a, b) for a, b in zip(r.json(), want))
        r = h.post("/rerank", json={"query": QUERY, "texts": DOCS, "return_text": True})
        assert r.status_code == 200
        body = r.json()
        assert body[0]["index"] == 0 and body[0]["text"] == DOCS[0]
        assert [x["score"] for x in body] == sorted((x["score"] for x in body), reverse=True)
        raw = h.post("/rerank", json={"query": QUERY, "texts": DOCS, "raw_scores": True}).json()
        assert raw[0]["score"] > 1  # a logit, not a probability
        long = "word " * 2000
        r = h.post("/embed", json={"inputs": [long]})  # TEI: truncate defaults to false
        assert r.status_code == 400 and "inputs[0]" in r.json()["error"]["message"]
        assert h.post("/embed", json={"inputs": [long], "truncate": True}).status_code == 200


def test_collections_routes_and_grpc_json_mapping_equal_grpc(srv):
    admin = {"Authorization": f"Bearer {KEYS['admin']}"}
    with httpx.Client(base_url=srv.http, headers=admin, timeout=60) as h:
        assert h.post("/v1/collections", json={"name": "web"}).status_code == 200
        docs = [{"id": f"d{i}", "text": t, "metadata": json.dumps({"i": i})}
                for i, t in enumerate(DOCS)]
        r = h.post("/v1/collections/web/upsert", json={"documents": docs})
        assert r.status_code == 200 and r.json()["upserted"] in ("4", 4)
        assert h.get("/v1/collections").json()["collections"][0]["name"] == "web"
        assert h.get("/v1/collections/web").json()["info"]["documents"] in ("4", 4)
        http_hits = h.post("/v1/collections/web/search",
                           json={"query": QUERY, "top_k": 3}).json()["hits"]
        mapped = h.post("/diffrank.v1.Diffrank/Search",
                        json={"collection": "web", "query": QUERY, "top_k": 3}).json()["hits"]
        grpc_hits = Client(srv.target, api_key=KEYS["read"]).search("web", QUERY, top_k=3).hits
        assert [x["id"] for x in http_hits] == [x["id"] for x in mapped] == [x.id for x in grpc_hits]
        # Search by a caller's vector (an OpenAI-route query embedding): DENSE, no text.
        vec = h.post("/v1/embeddings", json={"input": QUERY, "input_type": "query"}).json()
        vec = vec["data"][0]["embedding"]
        by_vec = h.post("/v1/collections/web/search",
                        json={"query_vector": vec, "mode": "SEARCH_MODE_DENSE", "rerank": False,
                              "top_k": 3}).json()["hits"]
        by_text = Client(srv.target, api_key=KEYS["read"]).search(
            "web", QUERY, top_k=3, mode=pb.SEARCH_MODE_DENSE, rerank=False).hits
        assert [x["id"] for x in by_vec] == [x.id for x in by_text]
        r = h.post("/v1/collections/web/search", json={"query_vector": vec[:10], "query": "x"})
        assert r.status_code == 400 and "dimension" in r.json()["error"]["message"]
        got = h.post("/v1/collections/web/get", json={"ids": ["d1", "zz"]}).json()["documents"]
        assert [d["id"] for d in got] == ["d1"] and got[0]["text"] == DOCS[1]
        r = h.post("/v1/collections/web/delete", json={"filter": json.dumps({"field": "i", "gte": 2})})
        assert r.json()["deleted"] in ("2", 2)
        r = h.post("/v1/collections/web/search", json={"collection": "other", "query": "x"})
        assert r.status_code == 400 and "differs" in r.json()["error"]["message"]
        assert h.delete("/v1/collections/web").status_code == 200
        assert h.get("/v1/collections/web").status_code == 404


def test_errors_keys_limits_and_deadlines(srv):
    with httpx.Client(base_url=srv.http, timeout=60) as h:
        r = h.post("/v1/embeddings", json={"input": "x"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHENTICATED"
        read = {"Authorization": f"Bearer {KEYS['read']}"}
        r = h.post("/v1/collections", json={"name": "nope"}, headers=read)
        assert r.status_code == 403 and r.json()["error"]["code"] == "PERMISSION_DENIED"
        r = h.post("/v1/collections/missing/search", json={"query": "x"}, headers=read)
        assert r.status_code == 404 and "missing" in r.json()["error"]["message"]
        for body in (b"{oops", b"[1, 2]", "\"\\ud800\"".encode()):
            r = h.post("/v1/embeddings", content=body, headers=read)
            assert r.status_code == 400, body
        r = h.post("/v1/embeddings", json={"input": [[1, 2, 3]]}, headers=read)
        assert r.status_code == 400 and "token ids" in r.json()["error"]["message"]
        r = h.post("/v1/embeddings", json={"input": "x", "encoding_format": "int8"}, headers=read)
        assert r.status_code == 400 and "encoding_format" in r.json()["error"]["message"]
        r = h.post("/v1/embeddings", json={"input": "x", "dimensions": 7}, headers=read)
        assert r.status_code == 400 and "dimensions" in r.json()["error"]["message"]
        r = h.post("/v1/embeddings", json={"input": ["ok", "\xff".encode("latin-1").decode("latin-1"), ""]},
                   headers=read)
        assert r.status_code == 400 and "input[2]" in r.json()["error"]["message"]
        r = h.post("/diffrank.v1.Diffrank/Search", json={"collection": "x", "top_kk": 1}, headers=read)
        assert r.status_code == 400 and "top_kk" in r.json()["error"]["message"]
        for cap in (0, "many"):
            r = h.post("/v2/rerank", json={"query": "q", "documents": ["d"], "max_tokens_per_doc": cap},
                       headers=read)
            assert r.status_code == 400 and "max_tokens_per_doc" in r.json()["error"]["message"]
        assert h.post("/diffrank.v1.Diffrank/Nope", json={}, headers=read).status_code == 404
        assert h.post("/no/such/route", json={}, headers=read).status_code == 404
        assert h.get("/v1/embeddings", headers=read).status_code == 405
        limit = Client(srv.target, api_key=KEYS["read"]).info().limits.max_request_bytes
        big = b'{"input": "' + b"a" * limit + b'"}'
        r = h.post("/v1/embeddings", content=big, headers=read)
        assert r.status_code == 413 and r.json()["error"]["code"] == "RESOURCE_EXHAUSTED"
        many = {"query": QUERY, "documents": DOCS * 50}
        r = h.post("/v1/rerank", json=many, headers={**read, "X-Timeout-Ms": "1"})
        assert r.status_code == 504 and r.json()["error"]["code"] == "DEADLINE_EXCEEDED"
        r = h.post("/v1/rerank", json=many, headers={**read, "X-Timeout-Ms": "soon"})
        assert r.status_code == 400 and "X-Timeout-Ms" in r.json()["error"]["message"]
        # The server still answers, and the metrics count the HTTP calls as RPCs.
        assert h.post("/v1/embeddings", json={"input": "still fine"}, headers=read).status_code == 200


def test_https_with_the_grpc_ports_certificate(tmp_path):
    from test_operations import make_pki
    d = str(tmp_path)
    make_pki(d)
    port = free_port()
    s = Server(extra_args=["--tls_cert", f"{d}/server.pem", "--tls_key", f"{d}/server.key",
                           "--http_listen", f"127.0.0.1:{port}"], keys=False, wait=False)
    try:
        s.wait_serving(credentials=grpc.ssl_channel_credentials(open(f"{d}/ca.pem", "rb").read()))
        with httpx.Client(verify=tls_context(f"{d}/ca.pem"), timeout=60) as h:
            r = h.post(f"https://127.0.0.1:{port}/v1/embeddings", json={"input": "secure"})
            assert r.status_code == 200 and len(r.json()["data"][0]["embedding"]) == 384
        with pytest.raises(httpx.HTTPError):
            httpx.post(f"http://127.0.0.1:{port}/v1/embeddings", json={"input": "x"}, timeout=5)
    finally:
        s.close()


def tls_context(ca, cert=None):
    """A client TLS context trusting `ca`, presenting `cert` = (pem, key) when given (httpx
    0.28 ignores its own cert= argument when verify is a path)."""
    import ssl
    ctx = ssl.create_default_context(cafile=ca)
    if cert:
        ctx.load_cert_chain(*cert)
    return ctx


def test_https_mutual_tls_requires_a_client_certificate_from_the_ca(tmp_path):
    """--tls_client_ca covers the HTTP port as the gRPC port: a client certificate signed by
    the CA is required in the handshake; none, or one from another CA, gets no request through."""
    from test_operations import make_pki
    d, other = tmp_path / "pki", tmp_path / "other"
    d.mkdir()
    other.mkdir()
    make_pki(str(d))
    make_pki(str(other))  # a second CA with its own client certificate
    port = free_port()
    s = Server(extra_args=["--tls_cert", f"{d}/server.pem", "--tls_key", f"{d}/server.key",
                           "--tls_client_ca", f"{d}/ca.pem", "--http_listen", f"127.0.0.1:{port}"],
               wait=False)
    url = f"https://127.0.0.1:{port}"
    read_key = {"Authorization": f"Bearer {KEYS['read']}"}
    try:
        read = lambda n: open(f"{d}/{n}", "rb").read()  # noqa: E731
        s.wait_serving(credentials=grpc.ssl_channel_credentials(
            read("ca.pem"), read("client.key"), read("client.pem")))
        good = tls_context(f"{d}/ca.pem", (f"{d}/client.pem", f"{d}/client.key"))
        with httpx.Client(verify=good, timeout=60, headers=read_key) as h:
            r = h.post(f"{url}/v1/embeddings", json={"input": "mutual"})
            assert r.status_code == 200 and len(r.json()["data"][0]["embedding"]) == 384
            # Keys and roles still apply on an authenticated connection.
            r = h.post(f"{url}/v1/collections", json={"name": "nope"})
            assert r.status_code == 403, r.text
        # The openai SDK over mutual TLS (its http_client carries the certificate).
        sdk = OpenAI(base_url=f"{url}/v1", api_key=KEYS["read"],
                     http_client=httpx.Client(verify=good), max_retries=0)
        assert len(sdk.embeddings.create(model="diffrank", input=["a", "b"]).data) == 2
        for ctx in (tls_context(f"{d}/ca.pem"),
                    tls_context(f"{d}/ca.pem", (f"{other}/client.pem", f"{other}/client.key"))):
            with pytest.raises(httpx.TransportError):
                with httpx.Client(verify=ctx, timeout=10, headers=read_key) as h:
                    h.post(f"{url}/v1/embeddings", json={"input": "no"})
        # Refused handshakes leave the server serving.
        with httpx.Client(verify=good, timeout=60, headers=read_key) as h:
            r = h.post(f"{url}/embed", json={"inputs": "after"})
            assert r.status_code == 200, r.text
    finally:
        s.close()


def test_garbage_bodies_on_every_route_get_json_errors_and_the_server_lives(srv):
    """A bounded mutation fuzz of the HTTP front (the libFuzzer project has no gRPC): valid
    bodies of every route, truncated, byte-flipped, spliced and retyped, 1,500 calls."""
    import random
    rng = random.Random(7)
    seeds = {
        "/v1/embeddings": {"input": ["a", "b"], "encoding_format": "base64", "dimensions": 384},
        "/embed": {"inputs": "x", "truncate": True},
        "/rerank": {"query": "q", "texts": ["a", "b"], "raw_scores": True},
        "/v1/rerank": {"query": "q", "documents": [{"text": "a"}, "b"], "top_n": 1},
        "/v2/rerank": {"query": "q", "documents": ["a"], "return_documents": True},
        "/v1/collections": {"name": "fz", "index": "HNSW32"},
        "/v1/collections/fz/search": {"query": "q", "top_k": 3, "filter": '{"field": "k", "eq": 1}'},
        "/v1/collections/fz/upsert": [{"documents": [{"id": "1", "text": "t"}]}],
        "/v1/collections/fz/delete": {"ids": ["1"]},
        "/v1/collections/fz/get": {"ids": ["1"]},
        "/diffrank.v1.Diffrank/Search": {"collection": "fz", "query": "q", "mode": "SEARCH_MODE_DENSE"},
        "/diffrank.v1.Diffrank/Upsert": {"collection": "fz", "documents": [{"id": "2", "text": "u"}]},
    }
    junk = [b"", b"null", b"[]", b"{}", b"\x00\xff", b'{"input": 1e999}', b'{"a":' * 300,
            b'"\\ud800"', b'{"documents": {"text": 5}}', "é".encode() * 50]

    def mutate(body):
        b = bytearray(body)
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(4)
            if op == 0 and b:
                del b[rng.randrange(len(b)):]
            elif op == 1 and b:
                b[rng.randrange(len(b))] = rng.randrange(256)
            elif op == 2:
                b[rng.randrange(len(b) + 1):0] = rng.choice(junk)
            else:
                b = bytearray(json.dumps(rng.choice([1, "x", None, [1], {"k": []}, True])).encode())
        return bytes(b)

    admin = {"Authorization": f"Bearer {KEYS['admin']}", "Content-Type": "application/json"}
    with httpx.Client(base_url=srv.http, headers=admin, timeout=60) as h:
        h.post("/v1/collections", json={"name": "fz"})
        statuses = {}
        for i in range(1500):
            path = rng.choice(list(seeds))
            body = mutate(json.dumps(seeds[path]).encode()) if i % 10 else rng.choice(junk)
            method = rng.choice(["POST"] * 8 + ["GET", "DELETE", "PUT"])
            r = h.request(method, path, content=body)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            assert r.status_code < 500 or r.status_code == 501, (path, body[:200], r.text)
            if r.status_code >= 400:
                assert "error" in r.json(), (path, r.text)
        assert statuses.get(200, 0) > 0 and statuses.get(400, 0) > 100, statuses
        assert h.post("/v1/embeddings", json={"input": "alive"}).status_code == 200
        h.delete("/v1/collections/fz")


def test_rest_routes_take_objects_and_short_modes_and_answer_plain_json(srv):
    """Issue 25 items 8 and 9: REST bodies took filter and metadata only as JSON inside a
    string, "mode": "dense" was refused, and answers carried int64 counts as strings and every
    empty field. The gRPC JSON mapping route stays proto-exact."""
    admin = {"Authorization": f"Bearer {KEYS['admin']}"}
    with httpx.Client(base_url=srv.http, headers=admin, timeout=60) as h:
        assert h.post("/v1/collections", json={"name": "objs"}).status_code == 200
        docs = [{"id": f"d{i}", "text": t, "metadata": {"i": i, "lang": "en"}}
                for i, t in enumerate(DOCS)]
        r = h.post("/v1/collections/objs/upsert", json={"documents": docs})
        assert r.status_code == 200 and r.json()["upserted"] == 4, r.text
        assert h.get("/v1/collections/objs").json()["info"]["documents"] == 4
        for mode in ("dense", "lexical", "hybrid", "SEARCH_MODE_DENSE"):
            r = h.post("/v1/collections/objs/search",
                       json={"query": QUERY, "top_k": 2, "mode": mode,
                             "filter": {"field": "i", "lte": 2}, "include_metadata": True})
            assert r.status_code == 200, (mode, r.text)
            hits = r.json()["hits"]
            assert hits and all(x["metadata"]["i"] <= 2 for x in hits), (mode, hits)
            assert "text" not in hits[0]  # empty fields are left out
        r = h.post("/v1/collections/objs/search", json={"query": "x", "mode": "fuzzy"})
        assert r.status_code == 400 and "mode" in r.json()["error"]["message"]
        r = h.post("/v1/collections/objs/delete", json={"filter": {"field": "i", "gte": 3}})
        assert r.json()["deleted"] == 1
        # The gRPC JSON mapping keeps protobuf's shapes (int64 as strings, enum names).
        r = h.post("/diffrank.v1.Diffrank/CollectionStats", json={"name": "objs"})
        assert r.json()["info"]["documents"] == "3"
        r = h.post("/diffrank.v1.Diffrank/Search", json={"collection": "objs", "query": "x",
                                                         "mode": "dense"})
        assert r.status_code == 400
    # The Python client takes the same objects.
    c = Client(srv.target, api_key=KEYS["read"])
    hits = c.search("objs", QUERY, top_k=3, mode="dense", rerank=False,
                    filter={"field": "lang", "eq": "en"}).hits
    assert len(hits) == 3


def test_openai_sdk_lists_the_models(srv):
    """Issue 25 item 10: GET /v1/models (the OpenAI SDK's models.list()) was missing."""
    client = OpenAI(api_key=KEYS["read"], base_url=srv.http + "/v1")
    info = Client(srv.target, api_key=KEYS["read"]).info()
    ids = [m.id for m in client.models.list()]
    # Every loaded embedder (the default first), then the reranker.
    assert ids == [m.id for m in info.embedders] + [info.reranker.id], ids
    assert ids[0] == info.embedder.id
    assert client.models.retrieve(info.embedder.id).id == info.embedder.id
    with pytest.raises(Exception):
        client.models.retrieve("no-such-model")
