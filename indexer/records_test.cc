// records_test.cc: every input format, and every kind of bad record, on
// real files in a temporary directory.
#include "indexer/records.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace diffrank::indexer {
namespace {

namespace fs = std::filesystem;

class RecordsTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(testing::TempDir()) /
           absl::StrCat(
               "records_", getpid(), "_",
               testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& body) {
    const fs::path p = dir_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << body;
    return p.string();
  }
  absl::Status Read(const std::string& path, InputOptions o = {}) {
    good_.clear();
    bad_.clear();
    return ReadRecords(
        path, o,
        [&](Record r) {
          good_.push_back(std::move(r));
          return absl::OkStatus();
        },
        [&](const std::string& where, const std::string& why) {
          bad_.push_back(where + " " + why);
          return absl::OkStatus();
        });
  }
  fs::path dir_;
  std::vector<Record> good_;
  std::vector<std::string> bad_;
};

TEST_F(RecordsTest, JsonlWithBadLinesReportedByLine) {
  const std::string p = Write(
      "docs.jsonl",
      "{\"id\": \"a\", \"title\": \"T\", \"text\": \"alpha\", \"metadata\": "
      "{\"k\": 1}}\n"
      "{broken json\n"
      "\n"
      "{\"id\": 7, \"text\": \"seven\", \"metadata\": \"{\\\"x\\\": true}\"}\n"
      "{\"text\": \"no id\"}\n"
      "{\"id\": \"b\"}\n"
      "[1, 2]\n" +
          std::string("{\"id\": \"big\", \"text\": \"") +
          std::string(200, 'x') +
          "\"}\n"
          "{\"id\": \"last\", \"text\": \"z\"}");
  InputOptions o;
  o.max_record_bytes = 100;
  ASSERT_TRUE(Read(p, o).ok());
  ASSERT_EQ(good_.size(), 3u);
  EXPECT_EQ(good_[0].doc.id, "a");
  EXPECT_EQ(good_[0].doc.title, "T");
  EXPECT_EQ(good_[0].doc.metadata, "{\"k\":1}");
  EXPECT_EQ(good_[0].where, p + ":1");
  EXPECT_EQ(good_[1].doc.id, "7");
  EXPECT_EQ(good_[1].doc.metadata, "{\"x\": true}");
  EXPECT_EQ(good_[2].doc.id, "last");  // no final newline
  ASSERT_EQ(bad_.size(), 5u);
  EXPECT_EQ(bad_[0], p + ":2 not a JSON object");
  EXPECT_NE(bad_[1].find(":5 missing or empty \"id\""), std::string::npos);
  EXPECT_NE(bad_[2].find(":6 missing \"text\""), std::string::npos);
  EXPECT_NE(bad_[3].find(":7 not a JSON object"), std::string::npos);
  EXPECT_NE(bad_[4].find(":8 line longer than 100 bytes"), std::string::npos);
}

TEST_F(RecordsTest, ConfigurableFieldNames) {
  const std::string p = Write(
      "q.jsonl", "{\"doc_id\": \"x\", \"body\": \"b\", \"head\": \"h\"}\n");
  InputOptions o;
  o.id_field = "doc_id";
  o.text_field = "body";
  o.title_field = "head";
  ASSERT_TRUE(Read(p, o).ok());
  ASSERT_EQ(good_.size(), 1u);
  EXPECT_EQ(good_[0].doc.text, "b");
  EXPECT_EQ(good_[0].doc.title, "h");
}

TEST_F(RecordsTest, CsvAndTsvFollowRfc4180) {
  const std::string p =
      Write("docs.csv",
            "id,title,text\r\n"
            "1,plain,simple text\r\n"
            "2,\"with, comma\",\"line one\nline two with \"\"quotes\"\"\"\r\n"
            "3,too,many,fields\n"
            "4,short\n"
            "5,last,\"unterminated");
  ASSERT_TRUE(Read(p).ok());
  ASSERT_EQ(good_.size(), 2u);
  EXPECT_EQ(good_[1].doc.title, "with, comma");
  EXPECT_EQ(good_[1].doc.text, "line one\nline two with \"quotes\"");
  ASSERT_EQ(bad_.size(), 3u);
  EXPECT_NE(bad_[0].find(":5 4 fields, the header has 3"), std::string::npos)
      << bad_[0];
  EXPECT_NE(bad_[1].find(":6 2 fields"), std::string::npos) << bad_[1];
  EXPECT_NE(bad_[2].find(":7 a quoted field is not closed"), std::string::npos)
      << bad_[2];
  const std::string t = Write("docs.tsv", "id\ttext\nx\thello\tworld\ny\tok\n");
  ASSERT_TRUE(Read(t).ok());
  ASSERT_EQ(good_.size(), 1u);
  EXPECT_EQ(good_[0].doc.id, "y");
  EXPECT_EQ(bad_.size(), 1u);
}

TEST_F(RecordsTest, BeirFolderAndDirectoryTree) {
  Write("beir/corpus.jsonl",
        "{\"_id\": \"d1\", \"title\": \"t\", \"text\": \"x\"}\n");
  Write("beir/queries.jsonl", "{\"_id\": \"q1\", \"text\": \"q\"}\n");
  ASSERT_TRUE(Read((dir_ / "beir").string()).ok());
  ASSERT_EQ(good_.size(), 1u);
  EXPECT_EQ(good_[0].doc.id, "d1");
  Write("tree/b.md", "# B\nbee");
  Write("tree/a/z.txt", "zed");
  Write("tree/a/skip.bin", "no");
  Write("tree/c.TXT", "upper");
  ASSERT_TRUE(Read((dir_ / "tree").string()).ok());
  ASSERT_EQ(good_.size(), 3u);
  EXPECT_EQ(good_[0].doc.id, "a/z.txt");
  EXPECT_EQ(good_[1].doc.id, "b.md");
  EXPECT_EQ(good_[1].doc.text, "# B\nbee");
  EXPECT_EQ(good_[2].doc.id, "c.TXT");
}

TEST(RecordChecker, RefusesBlankTextAndRepeatedIdsAsTheServerDoes) {
  RecordChecker c{index::CollectionOptions()};
  auto doc = [](std::string id, std::string title, std::string text) {
    index::Document d;
    d.id = std::move(id);
    d.title = std::move(title);
    d.text = std::move(text);
    return d;
  };
  index::Document good = doc("a", "", "some text");
  EXPECT_EQ(c.Problem(good), "");
  index::Document blank = doc("b", "a title", " \t\n");
  EXPECT_EQ(c.Problem(blank), "text is empty (every document needs text)");
  index::Document again = doc("a", "", "other text");
  EXPECT_NE(c.Problem(again).find("duplicate id"), std::string::npos);
}

TEST_F(RecordsTest, FormatsAndUnreadableInputs) {
  InputOptions o;
  EXPECT_EQ(*ResolveFormat("-", o), "jsonl");
  EXPECT_EQ(*ResolveFormat("x.tsv", o), "tsv");
  EXPECT_EQ(ResolveFormat("x.parquet", o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o.format = "xml";
  EXPECT_EQ(ResolveFormat("x.jsonl", o).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Read((dir_ / "missing.jsonl").string()).code(),
            absl::StatusCode::kNotFound);
  const std::string locked = Write("locked.jsonl", "{}\n");
  fs::permissions(locked, fs::perms::none);
  if (getuid() != 0) {  // root reads anything
    EXPECT_EQ(Read(locked).code(), absl::StatusCode::kPermissionDenied);
  }
}

}  // namespace
}  // namespace diffrank::indexer
