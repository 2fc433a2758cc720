// metrics_test.cc: the exposition carries the process_* metrics, build info
// and HTTP answer counts; /proc/<pid>/stat parsing on awkward names.
#include "service/metrics.h"

#include <cstdlib>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "service/process_stats.h"

namespace diffrank::service {
namespace {

// Value of the first sample of `name` (no labels) in an exposition.
double Sample(const std::string& text, const std::string& name) {
  const size_t at = text.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  const size_t from = at + name.size() + 2;
  double v = -1;
  EXPECT_TRUE(
      absl::SimpleAtod(text.substr(from, text.find('\n', from) - from), &v));
  return v;
}

TEST(Metrics, ExposesProcessMetricsOfThisProcess) {
  Metrics m;
  const std::string text = m.Scrape();
  EXPECT_GT(Sample(text, "process_resident_memory_bytes"), 1 << 20);
  EXPECT_GT(Sample(text, "process_virtual_memory_bytes"), 1 << 20);
  EXPECT_GE(Sample(text, "process_open_fds"), 3);
  EXPECT_GE(Sample(text, "process_cpu_seconds_total"), 0);
  const double start = Sample(text, "process_start_time_seconds");
  const double now = absl::ToUnixSeconds(absl::Now());
  EXPECT_LE(start, now + 1);
  EXPECT_GT(start, now - 24 * 3600) << "this test process started long ago?";
}

TEST(Metrics, BuildInfoAndHttpAnswersByStatus) {
  Metrics m;
  m.SetBuildInfo("1.2.3", "1.13.1");
  m.RecordHttpResponse(400);
  m.RecordHttpResponse(400);
  m.RecordHttpResponse(413);
  const std::string text = m.Scrape();
  EXPECT_NE(
      text.find(R"(diffrank_build_info{torch="1.13.1",version="1.2.3"} 1)"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(diffrank_http_responses_total{code="400"} 2)"),
            std::string::npos);
  EXPECT_NE(text.find(R"(diffrank_http_responses_total{code="413"} 1)"),
            std::string::npos);
}

TEST(ProcStat, ReadsFieldsAfterTheLastParenthesis) {
  // comm "a) (b" holds both a space and parentheses.
  const std::string line =
      "42 (a) (b) S 1 42 42 0 -1 4194304 100 0 0 0 250 150 0 0 20 0 3 0 "
      "1000 2097152 512 18446744073709551615";
  auto s = ParseProcStat(line, /*btime=*/1e9, /*ticks=*/100, /*page=*/4096);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_DOUBLE_EQ(s->cpu_seconds, 4.0);
  EXPECT_DOUBLE_EQ(s->start_time_seconds, 1e9 + 10);
  EXPECT_DOUBLE_EQ(s->virtual_bytes, 2097152);
  EXPECT_DOUBLE_EQ(s->resident_bytes, 512.0 * 4096);
  EXPECT_FALSE(ParseProcStat("42 (x) S 1 2", 0, 100, 4096).ok());
  EXPECT_FALSE(ParseProcStat("no parenthesis", 0, 100, 4096).ok());
}

}  // namespace
}  // namespace diffrank::service
