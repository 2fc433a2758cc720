"""Every RPC of diffrank.v1 through Python grpcio against a real server."""
import math
import shutil
import subprocess
import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from diffrank_client import pb


def test_health_is_serving(server):
    stub = health_pb2_grpc.HealthStub(grpc.insecure_channel(server.target))
    r = stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert r.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_service(server):
    stub = reflection_pb2_grpc.ServerReflectionStub(grpc.insecure_channel(server.target))
    req = reflection_pb2.ServerReflectionRequest(list_services="")
    names = [s.name for r in stub.ServerReflectionInfo(iter([req]), timeout=5)
             for s in r.list_services_response.service]
    assert "diffrank.v1.Diffrank" in names
    assert "grpc.health.v1.Health" in names


def test_info_reports_models_and_limits(reader):
    r = reader.info()
    assert r.embedder.role == "bi-encoder" and r.embedder.dimension > 0
    assert r.reranker.role == "cross-encoder"
    assert r.embedder.architecture == "diffattn-v2"
    assert r.limits.max_top_k == 1000 and r.limits.default_rerank_depth > 0


def test_search_hybrid_rerank_finds_the_relevant_document(reader, corpus):
    r = reader.search("corpus", "which language has a garbage collector?", top_k=3,
                      include_text=True, include_metadata=True)
    assert len(r.hits) == 3
    assert r.hits[0].id in ("py", "rust")
    assert r.hits[0].HasField("rerank_score")
    assert r.hits[0].text and r.hits[0].title and r.hits[0].metadata.startswith("{")
    assert r.reranked == reader.info().limits.default_rerank_depth  # 2
    assert r.timing.total_us > 0 and r.timing.embed_us > 0 and r.timing.rerank_us > 0
    # The reranked hits first, then the rest in retrieval order: each part sorted (their
    # scores are on different scales, proto Hit.score).
    scores = [h.score for h in r.hits]
    for part in (scores[:r.reranked], scores[r.reranked:]):
        assert part == sorted(part, reverse=True)


def test_search_modes_and_filter(reader, corpus):
    for mode in (pb.SEARCH_MODE_DENSE, pb.SEARCH_MODE_LEXICAL, pb.SEARCH_MODE_HYBRID):
        r = reader.search("corpus", "bread flour oven", mode=mode, top_k=2, rerank=False)
        assert r.hits[0].id == "bread", mode
        assert r.reranked == 0
    r = reader.search("corpus", "baked bread", filter='{"field": "lang", "eq": "de"}', top_k=5)
    assert [h.id for h in r.hits] == ["brot"]
    r = reader.search("corpus", "language", filter='{"field": "year", "gte": 2000}', top_k=5)
    assert [h.id for h in r.hits] == ["rust"]


def test_rerank_cohere_shape(reader):
    docs = ["Tea is brewed from leaves.", "The capital of France is Paris.",
            "Paris is the capital and largest city of France."]
    r = reader.rerank("What is the capital of France?", docs, top_n=2, return_documents=True)
    assert len(r.results) == 2
    assert {x.index for x in r.results} <= {1, 2}
    assert all(0 <= x.relevance_score <= 1 for x in r.results)
    assert r.results[0].relevance_score >= r.results[1].relevance_score
    assert r.results[0].document == docs[r.results[0].index]
    assert r.model


def test_rerank_fusion_weight_per_request_and_default(reader, corpus):
    info = reader.info()
    assert 0 <= info.limits.default_rerank_fusion_weight <= 100
    q = "which language has a garbage collector?"
    alone = reader.search("corpus", q, top_k=3, rerank_depth=3, rerank_fusion_weight=0)
    for h in alone.hits[:alone.reranked]:
        assert math.isclose(h.score, h.rerank_score, rel_tol=1e-6)
    kept = reader.search("corpus", q, top_k=3, rerank_depth=3, rerank_fusion_weight=100)
    plain = reader.search("corpus", q, top_k=3, rerank=False)
    assert [h.id for h in kept.hits] == [h.id for h in plain.hits]
    assert all(h.HasField("rerank_score") for h in kept.hits)
    docs = ["Paris is the capital and largest city of France.", "Tea is brewed from leaves."]
    r = reader.rerank("What is the capital of France?", docs, fusion_weight=100)
    assert [x.index for x in r.results] == [0, 1]
    for bad in (-1.0, 1000.0):
        try:
            reader.search("corpus", q, rerank_fusion_weight=bad)
            raise AssertionError("accepted a bad rerank_fusion_weight")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "rerank_fusion_weight" in e.details()


def test_embed_query_and_document(reader):
    r = reader.embed(["hello world", "another text"], kind=pb.EMBED_KIND_QUERY)
    assert len(r.embeddings) == 2 and r.dimension == len(r.embeddings[0].values)
    norm = math.sqrt(sum(v * v for v in r.embeddings[0].values))
    assert abs(norm - 1) < 1e-3
    long_text = "word " * 2000
    r = reader.embed([long_text])
    assert r.embeddings[0].truncated


def test_get_upsert_replace_and_delete(admin, writer):
    admin.create_collection("crud")
    writer.upsert("crud", [{"id": "a", "text": "first version"}, {"id": "b", "text": "bee"}])
    writer.upsert("crud", [{"id": "a", "text": "second version", "metadata": '{"k": 1}'}])
    got = writer.get("crud", ["a", "missing", "b"])
    assert [d.id for d in got.documents] == ["a", "b"]
    assert got.documents[0].text == "second version"
    assert writer.delete("crud", ids=["b", "missing"]).deleted == 1
    assert writer.delete("crud", filter='{"field": "k", "eq": 1}').deleted == 1
    assert admin.stats("crud").info.documents == 0


def test_collections_lifecycle(admin):
    info = admin.create_collection("lifecycle", index="HNSW32")
    assert info.name == "lifecycle" and info.index == "HNSW32" and info.dimension > 0
    assert "lifecycle" in [c.name for c in admin.list_collections().collections]
    s = admin.stats("lifecycle")
    assert s.info.documents == 0 and s.disk_bytes > 0
    admin.drop_collection("lifecycle")
    assert "lifecycle" not in [c.name for c in admin.list_collections().collections]


def test_metrics_endpoint(server, reader, corpus):
    reader.search("corpus", "tea", top_k=1)
    text = urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics",
                                  timeout=5).read().decode()
    assert 'diffrank_requests_total{code="OK",method="Search"}' in text
    assert "diffrank_stage_duration_seconds_bucket" in text
    assert 'diffrank_batch_rows_count{kind="query_embed"}' in text
    assert 'diffrank_collection_documents{collection="corpus"} 5' in text
    assert "diffrank_model_info{" in text
    promtool = shutil.which("promtool")
    if promtool:
        p = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                           capture_output=True)
        assert p.returncode == 0, p.stdout.decode() + p.stderr.decode()
