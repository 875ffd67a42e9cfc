// The one JSON writer: whatever bytes a string holds, the document is valid JSON in valid UTF-8.
#include "edgefd/common/json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <limits>

#include "edgefd/common/output.h"

namespace edgefd {
namespace {

using ::testing::HasSubstr;

constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

// Dumps {"s": text} and parses it back with a strict UTF-8 parser.
std::string RoundTrip(const std::string& text) {
  std::string dumped = DumpJson(Json{{"s", text}});
  auto parsed = ParseJson(dumped, "dumped");
  EXPECT_TRUE(parsed.ok()) << parsed.error().message;
  return parsed.ok() ? (*parsed)["s"].get<std::string>() : std::string();
}

TEST(DumpJson, ValidUtf8PassesThroughUnchanged) {
  for (const std::string s : {"plain", "caf\xC3\xA9", "\xE2\x82\xAC 5", "\xF0\x9F\x98\x80",
                              "\xF4\x8F\xBF\xBF" /* U+10FFFF, the last code point */}) {
    EXPECT_EQ(RoundTrip(s), s);
  }
}

TEST(DumpJson, EscapesQuotesBackslashesAndControlCharacters) {
  std::string s = "a\"b\\c\n\t\x01";
  EXPECT_EQ(DumpJson(Json(s)), R"("a\"b\\c\n\t\u0001")");
  EXPECT_EQ(RoundTrip(s), s);
}

struct BadUtf8 {
  const char* what;
  std::string bytes;
};

class DumpJsonBadUtf8 : public ::testing::TestWithParam<BadUtf8> {};

TEST_P(DumpJsonBadUtf8, BecomesReplacementCharacters) {
  const std::string input = "<" + GetParam().bytes + ">";
  const std::string out = RoundTrip(input);
  EXPECT_THAT(out, HasSubstr(kReplacement)) << GetParam().what;
  EXPECT_EQ(out.front(), '<');
  EXPECT_EQ(out.back(), '>');  // what follows the bad bytes survives
  EXPECT_EQ(out.find(GetParam().bytes), std::string::npos) << GetParam().what;
}

INSTANTIATE_TEST_SUITE_P(Sequences, DumpJsonBadUtf8,
                         ::testing::Values(BadUtf8{"high surrogate U+D800", "\xED\xA0\x80"},
                                           BadUtf8{"low surrogate U+DFFF", "\xED\xBF\xBF"},
                                           BadUtf8{"above U+10FFFF", "\xF4\x90\x80\x80"},
                                           BadUtf8{"lead byte F5", "\xF5\x80\x80\x80"},
                                           BadUtf8{"overlong 2-byte '/'", "\xC0\xAF"},
                                           BadUtf8{"overlong 3-byte '/'", "\xE0\x80\xAF"},
                                           BadUtf8{"overlong 4-byte '/'", "\xF0\x80\x80\xAF"},
                                           BadUtf8{"stray continuation byte", "\x80"},
                                           BadUtf8{"truncated sequence", "\xE2\x82"},
                                           BadUtf8{"byte FF", "\xFF"}),
                         [](const ::testing::TestParamInfo<BadUtf8>& info) {
                           return "Case" + std::to_string(info.index);
                         });

TEST(DumpJson, NonFiniteNumbersBecomeNull) {
  const Json report = {{"fps", std::nan("")},
                       {"max", std::numeric_limits<double>::infinity()},
                       {"min", -std::numeric_limits<double>::infinity()},
                       {"ok", 1.5}};
  EXPECT_EQ(DumpJson(report), R"({"fps":null,"max":null,"min":null,"ok":1.5})");
  EXPECT_TRUE(ParseJson(DumpJson(report), "report").ok());
}

TEST(DumpJson, KeepsKeysInInsertionOrderAndIndents) {
  const Json doc = {{"zeta", 1}, {"alpha", Json::array({1, 2})}};
  EXPECT_EQ(DumpJson(doc), R"({"zeta":1,"alpha":[1,2]})");
  EXPECT_EQ(DumpJson(doc, 2), "{\n  \"zeta\": 1,\n  \"alpha\": [\n    1,\n    2\n  ]\n}");
}

TEST(RoundTo, RoundsForReportsAndKeepsNonFinite) {
  EXPECT_EQ(DumpJson(Json(RoundTo(278.123456, 2))), "278.12");
  EXPECT_EQ(RoundTo(0.00049, 3), 0.0);
  EXPECT_TRUE(std::isnan(RoundTo(std::nan(""), 2)));
}

TEST(ParseJson, NamesTheSourceOnError) {
  auto bad = ParseJson("{\"a\": ", "node.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message, HasSubstr("node.json: not valid JSON"));
  // Invalid UTF-8 inside a string is an error too, never passed on.
  EXPECT_FALSE(ParseJson("\"\xED\xA0\x80\"", "x").ok());
  EXPECT_EQ(ParseJson(R"({"a": [1, "b"]})", "x").value()["a"][1], "b");
}

TEST(ValueAt, ReadsWhatIsThereAndNothingElse) {
  const Json doc = Json::parse(R"({"metadata": {"uid": "u-1", "generation": 7, "a/b": "slash",
                                   "m~n": "tilde"},
                                   "items": [{"name": "x"}, {"name": 5}], "big": 18446744073709551615})");
  EXPECT_EQ(StringAt(doc, "/metadata/uid"), "u-1");
  EXPECT_EQ(IntegerAt(doc, "/metadata/generation"), 7);
  EXPECT_EQ(StringAt(doc, "/items/0/name"), "x");
  EXPECT_EQ(StringAt(doc, "/metadata/a~1b"), "slash");
  EXPECT_EQ(StringAt(doc, "/metadata/m~0n"), "tilde");
  EXPECT_EQ(ValueAt(doc, ""), &doc);
  // Of another type, missing, out of range, malformed: nothing, and no exception.
  EXPECT_EQ(StringAt(doc, "/items/1/name"), "");
  EXPECT_EQ(IntegerAt(doc, "/metadata/uid"), std::nullopt);
  EXPECT_EQ(IntegerAt(doc, "/big"), std::nullopt);  // beyond int64
  for (const char* bad : {"/items/2/name", "/items/-/name", "/items/01/name", "/items/x",
                          "/items/99999999999999999999", "metadata/uid", "/metadata/uid/0",
                          "/metadata/~2", "/metadata/~", "/nothing/here"}) {
    EXPECT_EQ(ValueAt(doc, bad), nullptr) << bad;
  }
}

TEST(ValidUtf8, KeepsValidTextAndReplacesTheRest) {
  EXPECT_EQ(ValidUtf8("caf\xC3\xA9 \"q\" \n"), "caf\xC3\xA9 \"q\" \n");
  EXPECT_EQ(ValidUtf8(std::string("a\xFF\xC0\x80z", 5)),
            std::string("a") + kReplacement + kReplacement + kReplacement + "z");
  EXPECT_EQ(ValidUtf8(std::string("n\0ul", 4)), std::string("n\0ul", 4));
}

TEST(ParseJson, DeepNestingIsRefusedBeforeAnyValueIsBuilt) {
  // 16 MB of '[' from an API server became 1.27 GB of nested arrays.
  const std::string deep =
      std::string(kMaxJsonDepth + 1, '[') + std::string(kMaxJsonDepth + 1, ']');
  auto r = ParseJson(deep, "answer");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("nested deeper"), std::string::npos) << r.error().message;
  EXPECT_TRUE(ParseJsonOrNull(deep).is_discarded());
  const std::string at_limit = std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']');
  EXPECT_TRUE(ParseJson(at_limit, "answer").ok());
  // Brackets inside strings (escaped quotes included) are text, not nesting.
  const std::string text = "{\"a\":\"" + std::string(500, '[') + "\\\"" + "\"}";
  EXPECT_TRUE(ParseJson(text, "answer").ok()) << text;
  EXPECT_FALSE(ParseJson(std::string(16 << 20, '['), "answer").ok());
  EXPECT_FALSE(ParseJson(std::string(kMaxJsonBytes + 1, ' '), "answer").ok());
}

// YAML read back by a real parser, as JSON: the same document whatever the strings hold.
Json YamlToJson(const YAML::Node& n) {
  if (n.IsMap()) {
    Json out = Json::object();
    for (const auto& kv : n) out[kv.first.as<std::string>()] = YamlToJson(kv.second);
    return out;
  }
  if (n.IsSequence()) {
    Json out = Json::array();
    for (const auto& item : n) out.push_back(YamlToJson(item));
    return out;
  }
  if (n.IsNull()) return nullptr;
  // A plain scalar's type is the question: a quoted one has tag "!".
  if (n.Tag() == "!") return n.as<std::string>();
  bool b = false;
  if (YAML::convert<bool>::decode(n, b)) return b;
  int64_t i = 0;
  if (YAML::convert<int64_t>::decode(n, i)) return i;
  return n.as<std::string>();
}

TEST(DumpYaml, ReadsBackAsTheSameDocument) {
  Json doc = {
      {"labels",
       {{"edgefd.io/board", "pine64-rockpro64"},
        {"beta.devicetree.org/arm-cortex-a53", "4"},
        {"edgefd.io/cpu.heterogeneous", "true"},
        {"empty", ""},
        {"odd", "a: b # c"},
        {"quote", "say \"hi\"\nnext line"},
        {"no", "no"},
        {"0x10", "-1"}}},
      {"cpus", {{"big", Json::array({4, 5})}, {"little", Json::array()}}},
      {"devices",
       Json::array({{{"id", "1-1.2"}, {"healthy", true}, {"devnodes", {"/dev/bus/usb/001/003"}}},
                    {{"id", "cpu4"}, {"healthy", false}, {"numa", nullptr}}})},
      {"nested", Json::array({Json::array({1, 2}), Json::object()})}};
  std::string yaml = DumpYaml(doc);
  YAML::Node parsed = YAML::Load(yaml);
  EXPECT_EQ(YamlToJson(parsed), doc) << yaml;
  EXPECT_THAT(yaml, HasSubstr("edgefd.io/board: pine64-rockpro64\n"));
  EXPECT_THAT(yaml, HasSubstr("beta.devicetree.org/arm-cortex-a53: \"4\"\n"));
  EXPECT_THAT(yaml, HasSubstr("- id: \"1-1.2\"\n  healthy: true\n"));
}

TEST(DumpYaml, ScalarsAndEmptyDocuments) {
  EXPECT_EQ(DumpYaml(Json::object()), "{}\n");
  EXPECT_EQ(DumpYaml(Json::array()), "[]\n");
  EXPECT_EQ(DumpYaml(Json("text")), "text\n");
  EXPECT_EQ(DumpYaml(Json(3)), "3\n");
}

}  // namespace
}  // namespace edgefd
