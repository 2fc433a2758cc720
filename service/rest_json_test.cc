// rest_json_test.cc: REST request relaxations and answer shapes.
#include "service/rest_json.h"

#include "diffrank/v1/diffrank.pb.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace diffrank::service {
namespace {

using json = nlohmann::json;

TEST(RestJson, ObjectsBecomeJsonTextAndShortModesEnumNames) {
  std::string body = R"({"query": "q", "mode": "Dense",
                         "filter": {"field": "lang", "eq": "en"}})";
  ASSERT_FALSE(RelaxRestBody(body).has_value());
  json j = json::parse(body);
  EXPECT_EQ(j["mode"], "SEARCH_MODE_DENSE");
  EXPECT_EQ(json::parse(j["filter"].get<std::string>()),
            json::parse(R"({"field": "lang", "eq": "en"})"));
  body =
      R"([{"documents": [{"id": "1", "text": "t", "metadata": {"a": [1]}}]}])";
  ASSERT_FALSE(RelaxRestBody(body).has_value());
  EXPECT_EQ(json::parse(body)[0]["documents"][0]["metadata"], R"({"a":[1]})");
  body =
      R"({"filter": "{\"field\": \"x\", \"eq\": 1}", "mode": "SEARCH_MODE_LEXICAL"})";
  const std::string same = json::parse(body).dump();
  ASSERT_FALSE(RelaxRestBody(body).has_value());
  EXPECT_EQ(body, same);  // the string forms keep working
  body = R"({"mode": "fuzzy"})";
  EXPECT_NE(RelaxRestBody(body).value_or("").find("mode must be"),
            std::string::npos);
  body = "{not json";
  EXPECT_TRUE(RelaxRestBody(body).has_value());
}

TEST(RestJson, AnswersCarryNumbersObjectsAndNoDefaults) {
  v1::SearchResponse r;
  v1::Hit* h = r.add_hits();
  h->set_id("a");
  h->set_metadata(R"({"lang":"en"})");
  r.mutable_timing()->set_total_us(1234);
  json j = json::parse(RestJson(r));
  EXPECT_EQ(j["hits"][0]["metadata"]["lang"], "en");
  EXPECT_EQ(j["timing"]["total_us"], 1234);
  EXPECT_FALSE(j["hits"][0].contains("text"));
}

}  // namespace
}  // namespace diffrank::service
