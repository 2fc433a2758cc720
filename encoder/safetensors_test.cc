#include "encoder/safetensors.h"

#include <cstring>

#include "gtest/gtest.h"

namespace diffrank::encoder {
namespace {

std::string MakeFile(const std::string& header, size_t data_bytes) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return out + header + std::string(data_bytes, '\0');
}

absl::Status ParseStatus(std::string bytes) {
  return SafetensorsFile::Parse(std::move(bytes), "m.safetensors").status();
}

TEST(Safetensors, WriteThenOpenRoundTrips) {
  const std::string path = testing::TempDir() + "/rt.safetensors";
  float a[6] = {1, 2, 3, 4, 5, 6};
  int64_t b[2] = {7, -8};
  ASSERT_TRUE(WriteSafetensors(
                  path,
                  {{"a",
                    DType::kF32,
                    {2, 3},
                    absl::string_view(reinterpret_cast<char*>(a), sizeof(a))},
                   {"b",
                    DType::kI64,
                    {2},
                    absl::string_view(reinterpret_cast<char*>(b), sizeof(b))}},
                  {{"k", "v"}})
                  .ok());
  auto f = SafetensorsFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  const TensorView* ta = (*f)->Find("a");
  ASSERT_NE(ta, nullptr);
  EXPECT_EQ(ta->shape, (std::vector<int64_t>{2, 3}));
  float got[6];
  std::memcpy(got, ta->data, sizeof(got));
  EXPECT_EQ(got[5], 6.0f);
  EXPECT_EQ((*f)->metadata().at("k"), "v");
  EXPECT_EQ((*f)->Find("b")->dtype, DType::kI64);
}

TEST(Safetensors, MissingFileIsNotFound) {
  EXPECT_EQ(SafetensorsFile::Open("/nonexistent.safetensors").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(Safetensors, TruncatedFilesAreRejected) {
  EXPECT_EQ(ParseStatus("abc").code(), absl::StatusCode::kInvalidArgument);
  std::string f = MakeFile(
      R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 16);
  EXPECT_TRUE(ParseStatus(f).ok());
  EXPECT_EQ(ParseStatus(f.substr(0, f.size() - 1)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseStatus(f.substr(0, 20)).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Safetensors, CorruptHeadersAreRejectedNamingTheTensor) {
  EXPECT_FALSE(ParseStatus(MakeFile("{not json", 0)).ok());
  auto st = ParseStatus(MakeFile(
      R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,12]}})", 12));
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("'w'"), std::string::npos);
  EXPECT_FALSE(
      ParseStatus(
          MakeFile(R"({"w":{"dtype":"Q4","shape":[4],"data_offsets":[0,4]}})",
                   4))
          .ok());
  EXPECT_FALSE(
      ParseStatus(
          MakeFile(R"({"w":{"dtype":"U8","shape":[-1],"data_offsets":[0,4]}})",
                   4))
          .ok());
  EXPECT_FALSE(
      ParseStatus(
          MakeFile(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                   R"("b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})",
                   6))
          .ok());
  EXPECT_FALSE(ParseStatus(MakeFile(R"({"w":{"dtype":"U8"}})", 0)).ok());
}

TEST(Safetensors, HugeHeaderLengthIsRejected) {
  std::string f(16, '\xFF');
  EXPECT_EQ(ParseStatus(f).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace diffrank::encoder
