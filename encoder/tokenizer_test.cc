#include "encoder/tokenizer.h"

#include <algorithm>

#include "gtest/gtest.h"

namespace diffrank::encoder {
namespace {

std::unique_ptr<Tokenizer> Make(TokenizerOptions opts = {}) {
  auto t = Tokenizer::FromTokens(
      {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "un", "##aff",
       "##able", ",", "!", "cafe", "中", "国", "a", "b", "c", "d"},
      opts);
  EXPECT_TRUE(t.ok()) << t.status();
  return *std::move(t);
}

std::vector<std::string> Tokens(const Tokenizer& t, absl::string_view text) {
  auto ids = t.Tokenize(text);
  EXPECT_TRUE(ids.ok()) << ids.status();
  std::vector<std::string> out;
  for (int id : *ids) out.push_back(t.Token(id));
  return out;
}

TEST(Tokenizer, SplitsPunctuationAndWordPieces) {
  auto t = Make();
  EXPECT_EQ(Tokens(*t, "Hello, WORLD! unaffable"),
            (std::vector<std::string>{"hello", ",", "world", "!", "un", "##aff",
                                      "##able"}));
}

TEST(Tokenizer, StripsAccentsIsolatesCjkAndDropsControls) {
  auto t = Make();
  EXPECT_EQ(Tokens(*t, "Caf\xC3\xA9\xE2\x80\x8B"),
            std::vector<std::string>{"cafe"});
  EXPECT_EQ(Tokens(*t, "\xE4\xB8\xAD\xE5\x9B\xBD"),
            (std::vector<std::string>{"中", "国"}));
}

TEST(Tokenizer, UnknownAndOverlongWordsBecomeUnk) {
  TokenizerOptions opts;
  opts.max_input_chars_per_word = 5;
  auto t = Make(opts);
  EXPECT_EQ(Tokens(*t, "zzz hellohello"),
            (std::vector<std::string>{"[UNK]", "[UNK]"}));
}

TEST(Tokenizer, KeepsCaseWhenNotLowerCasing) {
  TokenizerOptions opts;
  opts.lower_case = false;
  auto t = Make(opts);
  EXPECT_EQ(Tokens(*t, "Hello hello"),
            (std::vector<std::string>{"[UNK]", "hello"}));
}

TEST(Tokenizer, InvalidUtf8IsAnError) {
  auto t = Make();
  auto r = t->Encode("ok \xC3\x28");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Tokenizer, EncodeTruncatesAndReports) {
  TokenizerOptions opts;
  opts.max_length = 5;
  auto t = Make(opts);
  auto e = t->Encode("a b c d a b");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->ids.size(), 5u);
  EXPECT_EQ(e->ids.front(), t->cls_id());
  EXPECT_EQ(e->ids.back(), t->sep_id());
  EXPECT_TRUE(e->truncated());
  // Tokenization stops after what is kept (+1): a lower bound.
  EXPECT_GE(e->untruncated_length, 6);
  EXPECT_EQ(t->Encode("a b c")->untruncated_length, 5);
  EXPECT_FALSE(t->Encode("a b c")->truncated());
}

TEST(Tokenizer, BoundedTokenizationKeepsTheSamePrefix) {
  auto t = Make();
  std::string text;
  for (int i = 0; i < 3000; ++i) {
    text += (i % 7 == 3) ? "[SEP]" : (i % 5 ? "hello unaffable " : "world, ");
  }
  auto full = t->Tokenize(text);
  ASSERT_TRUE(full.ok());
  for (size_t limit : {1, 7, 100, 1000, 2500}) {
    auto part = t->Tokenize(text, limit);
    ASSERT_TRUE(part.ok());
    ASSERT_GE(part->size(), std::min(limit, full->size()));
    ASSERT_LE(part->size(), full->size());
    EXPECT_TRUE(std::equal(part->begin(), part->end(), full->begin())) << limit;
  }
  // A text made of special tokens (quadratic before the search cache): 1 MB.
  std::string specials;
  for (int i = 0; i < 200000; ++i) specials += "[SEP]";
  auto many = t->Tokenize(specials);
  ASSERT_TRUE(many.ok());
  EXPECT_EQ(many->size(), 200000u);
}

TEST(Tokenizer, PairTruncationIsLongestFirst) {
  TokenizerOptions opts;
  opts.max_length = 9;  // 6 content tokens
  auto t = Make(opts);
  auto e = t->EncodePair("a b", "c d c d c d c d");
  ASSERT_TRUE(e.ok());
  // Short side kept whole, long side cut to 4.
  EXPECT_EQ(e->ids.size(), 9u);
  EXPECT_EQ(e->type_ids, (std::vector<int32_t>{0, 0, 0, 0, 1, 1, 1, 1, 1}));
  auto both = t->EncodePair("a b a b a b", "c d c d c d c");
  ASSERT_TRUE(both.ok());
  // Both long: first gets target/2 = 3, second 3.
  EXPECT_EQ(both->ids.size(), 9u);
  EXPECT_EQ(both->type_ids[4], 0);
  EXPECT_EQ(both->type_ids[5], 1);
}

TEST(Tokenizer, SegmentsLayoutCutsQueryThenPassageAndRestartsPositions) {
  TokenizerOptions opts;
  opts.max_length = 10;
  auto t = Make(opts);
  // Query cut to 4 tokens in all ([CLS] a b [SEP]); passage to the rest (6).
  auto e = t->EncodeSegments("a b a b", "c d c d c d", /*max_a=*/4);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->split, 4);
  std::vector<std::string> toks;
  for (int id : e->ids) toks.push_back(t->Token(id));
  EXPECT_EQ(toks, (std::vector<std::string>{"[CLS]", "a", "b", "[SEP]", "[CLS]",
                                            "c", "d", "c", "d", "[SEP]"}));
  EXPECT_TRUE(e->truncated());
  EXPECT_EQ(e->type_ids, std::vector<int32_t>(10, 0));
  auto s = t->EncodeSegments("a", "c", 4);
  ASSERT_TRUE(s.ok());
  auto batch = t->Pad({*e, *s});
  EXPECT_EQ(batch.positions,
            (std::vector<int64_t>{0, 1, 2, 3, 0, 1, 2, 3, 4, 5,  //
                                  0, 1, 2, 0, 1, 2, 0, 0, 0, 0}));
  EXPECT_EQ(batch.segments,
            (std::vector<int64_t>{0, 0, 0, 0, 1, 1, 1, 1, 1, 1,  //
                                  0, 0, 0, 1, 1, 1, 1, 1, 1, 1}));
  // The joint layout pads without positions or segments.
  EXPECT_TRUE(t->Pad({*t->EncodePair("a", "c")}).segments.empty());
}

TEST(Tokenizer, PadBuildsMaskAndLengths) {
  auto t = Make();
  auto a = t->Encode("hello world");
  auto b = t->Encode("a");
  auto batch = t->Pad({*a, *b});
  EXPECT_EQ(batch.batch, 2);
  EXPECT_EQ(batch.seq_len, 4);
  EXPECT_EQ(batch.mask, (std::vector<int64_t>{1, 1, 1, 1, 1, 1, 1, 0}));
  EXPECT_EQ(batch.ids[7], t->pad_id());
  EXPECT_EQ(batch.lengths, (std::vector<int>{4, 3}));
}

TEST(Tokenizer, VocabularyWithoutSpecialTokensIsRejected) {
  auto t = Tokenizer::FromTokens({"a", "b"}, {});
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("[CLS]"), std::string::npos);
}

TEST(Tokenizer, MissingVocabularyFileIsNotFound) {
  auto t = Tokenizer::Create("/nonexistent/vocab.txt", {});
  EXPECT_EQ(t.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace diffrank::encoder
