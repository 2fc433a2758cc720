// chunker_test.cc: token windows with overlap, and the chunking sink.
#include "indexer/chunker.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

namespace diffrank::indexer {
namespace {

std::unique_ptr<encoder::Tokenizer> MakeTokenizer() {
  // "alpha" is one token, "betas" two (beta ##s), "." its own token.
  std::vector<std::string> vocab = {"[PAD]", "[UNK]",  "[CLS]",
                                    "[SEP]", "[MASK]", "alpha",
                                    "beta",  "##s",    "."};
  for (int i = 0; i < 40; ++i) vocab.push_back(absl::StrCat("w", i));
  return *encoder::Tokenizer::FromTokens(vocab, {});
}

int Tokens(const encoder::Tokenizer& t, absl::string_view s) {
  return static_cast<int>(t.Tokenize(s)->size());
}

std::string Words(int from, int to) {  // "w<from> ... w<to-1>"
  std::vector<std::string> w;
  for (int i = from; i < to; ++i) w.push_back(absl::StrCat("w", i % 40));
  return absl::StrJoin(w, " ");
}

TEST(ChunkSpans, WindowsFitOverlapAndCoverEveryWordInOrder) {
  const auto tok = MakeTokenizer();
  const std::string text =
      "alpha  betas.\n\n" + Words(0, 37) + "\tbetas alpha " + Words(3, 20);
  for (int size : {1, 2, 5, 8, 16}) {
    for (int overlap = 0; overlap < size; overlap += 2) {
      auto spans = ChunkSpans(*tok, text, {size, overlap});
      ASSERT_TRUE(spans.ok()) << spans.status();
      std::vector<std::string> covered;
      size_t prev_begin = 0, prev_end = 0;
      for (size_t i = 0; i < spans->size(); ++i) {
        const auto [b, e] = (*spans)[i];
        const std::string window = text.substr(b, e - b);
        // One word may exceed a window (it is alone then).
        const std::vector<std::string> words =
            absl::StrSplit(window, absl::ByAnyChar(" \t\n"), absl::SkipEmpty());
        if (words.size() > 1) {
          EXPECT_LE(Tokens(*tok, window), size) << window;
        }
        if (i > 0) {
          EXPECT_GT(b, prev_begin) << "windows move on";
          // The shared part is whole words of at most `overlap` tokens.
          if (b < prev_end) {
            EXPECT_LE(Tokens(*tok, text.substr(b, prev_end - b)), overlap);
          } else {
            // No shared words: every word of the gap is in some window.
            for (char c : text.substr(prev_end, b - prev_end)) {
              EXPECT_TRUE(c == ' ' || c == '\t' || c == '\n');
            }
          }
        }
        prev_begin = b;
        prev_end = e;
      }
      EXPECT_EQ((*spans)[0].first, 0u);
      EXPECT_EQ(spans->back().second, text.size());
    }
  }
}

TEST(ChunkSpans, NoOverlapSplitsTheWordsExactly) {
  const auto tok = MakeTokenizer();
  const std::string text = Words(0, 23);
  auto spans = ChunkSpans(*tok, text, {5, 0});
  ASSERT_TRUE(spans.ok());
  std::vector<std::string> joined;
  for (const auto& [b, e] : *spans) joined.push_back(text.substr(b, e - b));
  EXPECT_EQ(spans->size(), 5u);  // 23 one-token words in windows of 5
  EXPECT_EQ(absl::StrJoin(joined, " "), text);
}

TEST(ChunkSpans, ShortEmptyAndBadInput) {
  const auto tok = MakeTokenizer();
  auto one = ChunkSpans(*tok, "  alpha beta  ", {8, 2});
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0], (std::pair<size_t, size_t>{2, 12}));
  auto none = ChunkSpans(*tok, " \n ", {8, 2});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->size(), 1u);
  EXPECT_EQ(ChunkSpans(*tok, "a", {0, 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ChunkSpans(*tok, "a", {4, 4}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ChunkSpans(*tok, "alpha \xff\xfe", {4, 1}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ChunkingSink, IdsMetadataAndBadRecords) {
  const auto tok = MakeTokenizer();
  std::vector<Record> out;
  std::vector<std::string> bad;
  GoodSink sink = ChunkingSink(
      *tok, {4, 1},
      [&](Record r) {
        out.push_back(std::move(r));
        return absl::OkStatus();
      },
      [&](const std::string& where, const std::string& why) {
        bad.push_back(absl::StrCat(where, ": ", why));
        return absl::OkStatus();
      });
  Record r;
  r.where = "docs/a.md";
  r.doc.id = "docs/a.md";
  r.doc.title = "A";
  r.doc.text = Words(0, 10);
  r.doc.metadata = R"({"lang":"en"})";
  ASSERT_TRUE(sink(r).ok());
  ASSERT_EQ(out.size(), 3u);  // w0-w3, w3-w6, w6-w9
  for (size_t n = 0; n < out.size(); ++n) {
    EXPECT_EQ(out[n].doc.id, absl::StrCat("docs/a.md#", n));
    EXPECT_EQ(out[n].doc.title, "A");
    const nlohmann::json m = nlohmann::json::parse(out[n].doc.metadata);
    EXPECT_EQ(m["lang"], "en");
    EXPECT_EQ(m["source_id"], "docs/a.md");
    EXPECT_EQ(m["chunk"], n);
  }
  EXPECT_EQ(out[0].doc.text, "w0 w1 w2 w3");
  EXPECT_EQ(out[1].doc.text, "w3 w4 w5 w6");
  EXPECT_EQ(out[2].doc.text, "w6 w7 w8 w9");
  r.doc.metadata = R"({"chunk":1})";
  ASSERT_TRUE(sink(r).ok());
  r.doc.metadata = "{}";
  r.doc.text = "w1 \xc3";
  ASSERT_TRUE(sink(r).ok());
  // An id that is not UTF-8 cannot go into the metadata JSON (fuzz_records).
  r.doc.text = "w1 w2";
  r.doc.id =
      "a\xff"
      "0";
  ASSERT_TRUE(sink(r).ok());
  ASSERT_EQ(bad.size(), 3u);
  EXPECT_NE(bad[0].find("chunk"), std::string::npos) << bad[0];
  EXPECT_NE(bad[1].find("UTF-8"), std::string::npos) << bad[1];
  EXPECT_NE(bad[2].find("id is not valid UTF-8"), std::string::npos) << bad[2];
  EXPECT_EQ(out.size(), 3u);
}

}  // namespace
}  // namespace diffrank::indexer
