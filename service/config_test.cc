// Config file loading and validation.
#include "service/config.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"

namespace diffrank::service {
namespace {

std::string Write(const std::string& name, const std::string& text) {
  // Per process: ctest -j runs this binary's tests side by side.
  const std::string p =
      ::testing::TempDir() + "/" + std::to_string(getpid()) + "_" + name;
  std::ofstream(p) << text;
  return p;
}

ServerConfig Valid() {
  ServerConfig c;
  const std::string m =
      ::testing::TempDir() + "/model_" + std::to_string(getpid());
  std::filesystem::create_directories(m);
  std::ofstream(m + "/config.json") << "{}";
  c.embedder_model = c.reranker_model = m;
  return c;
}

TEST(Config, FileOverlaysDefaults) {
  ServerConfig c;
  ASSERT_TRUE(LoadConfigFile(Write("a.json", R"({"listen": "0.0.0.0:7000",
      "limits": {"default_rerank_depth": 10}, "batching": {"max_delay_ms": 1.5}})"),
                             c)
                  .ok());
  EXPECT_EQ(c.listen, "0.0.0.0:7000");
  EXPECT_EQ(c.limits.default_rerank_depth, 10);
  EXPECT_EQ(c.batching.max_delay_ms, 1.5);
  EXPECT_EQ(c.limits.max_top_k, 1000);  // untouched default
}

TEST(Config, UnknownKeysAndWrongTypesNameTheSetting) {
  ServerConfig c;
  auto s = LoadConfigFile(Write("b.json", R"({"limits": {"max_topk": 5}})"), c);
  EXPECT_NE(s.message().find("limits.max_topk"), absl::string_view::npos) << s;
  s = LoadConfigFile(Write("c.json", R"({"threads": "four"})"), c);
  EXPECT_NE(s.message().find("threads"), absl::string_view::npos) << s;
  s = LoadConfigFile(Write("e.json", R"({"packed_cpu_linears": "yes"})"), c);
  EXPECT_NE(s.message().find("packed_cpu_linears"), absl::string_view::npos)
      << s;
  s = LoadConfigFile(Write("f.json", R"({"router": {"shards": "a:1,b:2"}})"),
                     c);
  EXPECT_NE(s.message().find("router.shards"), absl::string_view::npos) << s;
  s = LoadConfigFile(Write("g.json", R"({"router": {"shard_timeout": 1}})"), c);
  EXPECT_NE(s.message().find("router.shard_timeout"), absl::string_view::npos)
      << s;
  s = LoadConfigFile(Write("d.json", "{oops"), c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  s = LoadConfigFile("/nonexistent/x.json", c);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
}

TEST(Config, ValidateNamesTheSettingAndFix) {
  EXPECT_TRUE(Validate(Valid()).ok()) << Validate(Valid());
  ServerConfig c = Valid();
  c.listen = "50051";
  EXPECT_NE(Validate(c).message().find("listen"), absl::string_view::npos);
  c = Valid();
  c.device = "tpu";
  EXPECT_NE(Validate(c).message().find("device"), absl::string_view::npos);
  for (int bad : {0, -1, 20000}) {  // 1 .. limits.max_candidates (10000)
    c = Valid();
    c.limits.default_candidates = bad;
    EXPECT_NE(Validate(c).message().find("default_candidates"),
              absl::string_view::npos)
        << bad;
  }
  c = Valid();
  c.limits.default_rerank_depth = 500;
  EXPECT_NE(Validate(c).message().find("default_rerank_depth"),
            absl::string_view::npos);
  for (double bad : {-0.5, 1e9, std::nan("")}) {
    c = Valid();
    c.limits.default_rerank_fusion_weight = bad;
    EXPECT_NE(Validate(c).message().find("default_rerank_fusion_weight"),
              absl::string_view::npos)
        << bad;
  }
  c = Valid();
  c.embedder_model = "/nonexistent";
  EXPECT_NE(Validate(c).message().find("embedder_model"),
            absl::string_view::npos);
  c = Valid();
  c.models_dir = "/nonexistent";
  EXPECT_NE(Validate(c).message().find("models_dir"), absl::string_view::npos);
  // Model ids from requests are names, never paths; a missing one says where
  // it was looked for.
  c = Valid();
  for (const char* bad : {"", ".", "..", "../models", "a/b", "x\n"}) {
    auto d = FindModelDir(c, bad);
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  auto missing = FindModelDir(c, "no-such-model");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("no-such-model/config.json"),
            std::string::npos);
  c = Valid();
  c.tls.cert_file = "/etc/hostname";
  EXPECT_NE(Validate(c).message().find("tls.key_file"),
            absl::string_view::npos);
  c = Valid();
  c.tls.cert_file = "/etc/hostname";  // readable, but no certificate
  c.tls.key_file = "/etc/hostname";
  EXPECT_NE(Validate(c).message().find("tls.cert_file and tls.key_file: not "
                                       "a PEM certificate"),
            absl::string_view::npos)
      << Validate(c);
  c = Valid();
  c.reranker_precision = "int4";
  EXPECT_NE(Validate(c).message().find("reranker_precision"),
            absl::string_view::npos);
  c = Valid();
  c.reranker_precision = "int8";
  EXPECT_TRUE(Validate(c).ok()) << Validate(c);
  c.device = "cuda";
  EXPECT_NE(Validate(c).message().find("int8"), absl::string_view::npos);
  c = Valid();
  c.batching.max_batch_rows = 0;
  EXPECT_NE(Validate(c).message().find("batching.max_batch_rows"),
            absl::string_view::npos);
  c = Valid();
  c.metrics_require_key = true;  // without a keys file
  EXPECT_NE(Validate(c).message().find("metrics_require_key"),
            absl::string_view::npos);
  c = Valid();
  c.router.shards = {"10.0.0.1:50051", "shard-1"};  // no port
  EXPECT_NE(Validate(c).message().find("router.shards[1]"),
            absl::string_view::npos);
  for (double bad : {0.0, -1.0, 1e6, std::nan("")}) {
    c = Valid();
    c.router.shard_timeout_s = bad;
    EXPECT_NE(Validate(c).message().find("router.shard_timeout_s"),
              absl::string_view::npos)
        << bad;
    c = Valid();
    c.router.write_timeout_s = bad;
    EXPECT_NE(Validate(c).message().find("router.write_timeout_s"),
              absl::string_view::npos)
        << bad;
  }
  c = Valid();
  c.router.shard_failure = "maybe";
  EXPECT_NE(Validate(c).message().find("router.shard_failure"),
            absl::string_view::npos);
  c = Valid();
  c.router.shards = {"a:1", "b:2"};
  c.router.shard_failure = "partial";
  EXPECT_TRUE(Validate(c).ok()) << Validate(c);
  c = Valid();
  c.limits.max_response_bytes = 0;
  EXPECT_NE(Validate(c).message().find("limits.max_response_bytes"),
            absl::string_view::npos);
}

}  // namespace
}  // namespace diffrank::service
