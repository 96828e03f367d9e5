#include "core/protocol.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace slipway::protocol {
namespace {

using json = nlohmann::json;

Hello SampleHello() {
  Hello h;
  h.node = "build-01.lan";
  h.agent_version = "1.4.2";
  h.labels = {"gpu", "region=eu"};
  h.capabilities = {{"node20", "python3.11"}, true, 123456789012ULL, {"shop", "api"}};
  h.last_seq = {{"op-1", 7}, {"op_2", 1}};
  return h;
}

Op SampleOp() {
  return {"op-42", 3, "start_instance", json{{"port", 8080}, {"env", {{"A", "b"}}}}, 30000};
}

// Encodes frame, decodes the text, and expects the same frame back.
void ExpectRoundTrip(const Frame& frame) {
  std::string text = Encode(frame);
  json j = json::parse(text);
  EXPECT_EQ(j["v"], 1) << text;
  EXPECT_EQ(j["type"], TypeOf(frame)) << text;
  Result<Frame> back = Decode(text);
  ASSERT_TRUE(back.ok()) << back.status().ToString() << "\n" << text;
  EXPECT_EQ(back->index(), frame.index());
  EXPECT_TRUE(*back == frame) << text << "\n" << Encode(*back);
}

// Decodes a frame given as a JSON object; "v": 1 is added unless j sets it.
Result<Frame> DecodeJson(json j) {
  if (!j.contains("v")) j["v"] = 1;
  return Decode(j.dump());
}

// Expects Decode(j) to fail with code and a message containing needle.
void ExpectFails(const json& j, Code code, const std::string& needle) {
  Result<Frame> r = DecodeJson(j);
  ASSERT_FALSE(r.ok()) << j.dump();
  EXPECT_EQ(r.status().code(), code) << r.status().ToString();
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().ToString();
}

json NestedArrays(int depth) {
  json j = 0;
  for (int i = 0; i < depth; ++i) j = json::array({j});
  return j;
}

json Parsed(const Frame& f) {
  return json::parse(Encode(f));
}

// ---- Round trips ----

TEST(Protocol, EveryFrameTypeRoundTrips) {
  ExpectRoundTrip(SampleHello());
  ExpectRoundTrip(Hello{"n", "", {}, {}, {}});
  ExpectRoundTrip(Welcome{"node-7", 18446744073709551615ULL, 5000, 15000});
  ExpectRoundTrip(SampleOp());
  ExpectRoundTrip(Op{"a", 0, "probe", json::object(), 1});
  ExpectRoundTrip(Event{"op-42", 1, EventKind::kOutput, "line of output\n"});
  ExpectRoundTrip(Event{"op-42", 2, EventKind::kProgress, json{{"pct", 50}}});
  ExpectRoundTrip(Event{"op-42", 3, EventKind::kState, json{{"state", "running"}}});
  ExpectRoundTrip(Event{"op-42", 4, EventKind::kOutput, nullptr});
  ExpectRoundTrip(OpResult{"op-42", true, "", json{{"pid", 4242}}});
  ExpectRoundTrip(OpResult{"op-42", false, "given up", json::object()});
  ExpectRoundTrip(Cancel{"op-42"});
  ExpectRoundTrip(Ack{"op-42", 99});
  ExpectRoundTrip(Heartbeat{1700000000000ULL, {"op-1", "op-2"}});
  ExpectRoundTrip(Heartbeat{1700000000000ULL, {}});
  ExpectRoundTrip(StopOp{"op-42"});
}

TEST(Protocol, TypeNamesAreTheDocumentedOnes) {
  EXPECT_STREQ(TypeOf(SampleHello()), "hello");
  EXPECT_STREQ(TypeOf(Welcome{}), "welcome");
  EXPECT_STREQ(TypeOf(Op{}), "op");
  EXPECT_STREQ(TypeOf(Event{}), "event");
  EXPECT_STREQ(TypeOf(OpResult{}), "result");
  EXPECT_STREQ(TypeOf(Cancel{}), "cancel");
  EXPECT_STREQ(TypeOf(Ack{}), "ack");
  EXPECT_STREQ(TypeOf(Heartbeat{}), "heartbeat");
  EXPECT_STREQ(TypeOf(StopOp{}), "stop_op");
}

TEST(Protocol, UnknownMembersAreIgnored) {
  json j = Parsed(Ack{"op-1", 3});
  j["future_field"] = {{"x", 1}};
  Result<Frame> r = DecodeJson(j);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(*r == Frame(Ack{"op-1", 3}));
}

TEST(Protocol, ResultValueDefaultsToAnEmptyObject) {
  Result<Frame> r = DecodeJson({{"type", "result"}, {"op_id", "x"}, {"ok", true}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(std::get<OpResult>(*r).value, json::object());
}

TEST(Protocol, EncodeNeverThrowsOnInvalidUtf8) {
  std::string text;
  EXPECT_NO_THROW(text = Encode(Cancel{"bad\xff"}));
  EXPECT_FALSE(Decode(text).ok());  // the replaced character is not a valid id char
}

// ---- Envelope failures ----

TEST(Protocol, GarbageIsInvalid) {
  const std::vector<std::string_view> texts = {
      "",
      "   ",
      "not json",
      "{",
      "{\"type\":",
      "[1,2]",
      "\"hello\"",
      "42",
      "null",
      "true",
      "{\"type\":\"ack\",\"v\":1,\"op_id\":\"a\",\"seq\":1} trailing",
      "\xff\xfe",
      std::string_view("{\"type\":\"ack\"\0}", 15)};
  for (std::string_view text : texts) {
    Result<Frame> r = Decode(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.status().code(), Code::kInvalid) << text << ": " << r.status().ToString();
  }
}

TEST(Protocol, NonObjectsAreRefusedAsSuch) {
  Result<Frame> r = Decode("[{\"type\":\"ack\"}]");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalid);
  EXPECT_NE(r.status().message().find("not a JSON object"), std::string::npos);
}

TEST(Protocol, WrongVersionIsUnsupported) {
  json j = Parsed(Ack{"op-1", 1});
  for (json v : {json(2), json(0), json(-1), json(18446744073709551615ULL)}) {
    j["v"] = v;
    Result<Frame> r = Decode(j.dump());
    ASSERT_FALSE(r.ok()) << v;
    EXPECT_EQ(r.status().code(), Code::kConflict) << r.status().ToString();
    EXPECT_TRUE(IsUnsupportedVersion(r.status()));
    EXPECT_FALSE(IsUnknownType(r.status()));
    EXPECT_NE(r.status().message().find("unsupported protocol version"), std::string::npos);
  }
}

TEST(Protocol, VersionOfTheWrongTypeOrMissingIsInvalid) {
  json j = Parsed(Ack{"op-1", 1});
  for (json v : {json("1"), json(1.0), json(nullptr), json::array({1})}) {
    j["v"] = v;
    Result<Frame> r = Decode(j.dump());
    ASSERT_FALSE(r.ok()) << v;
    EXPECT_EQ(r.status().code(), Code::kInvalid) << r.status().ToString();
  }
  j.erase("v");
  Result<Frame> r = Decode(j.dump());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalid);
  EXPECT_NE(r.status().message().find("missing v"), std::string::npos);
}

TEST(Protocol, VersionIsCheckedBeforeType) {
  Result<Frame> r = Decode(R"({"type":"teleport","v":2})");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(IsUnsupportedVersion(r.status()));
}

TEST(Protocol, UnknownTypeIsDistinctSoCallersCanIgnoreIt) {
  for (const char* type : {"teleport", "Hello", "HELLO", ""}) {
    Result<Frame> r = DecodeJson({{"type", type}});
    ASSERT_FALSE(r.ok()) << type;
    EXPECT_EQ(r.status().code(), Code::kNotFound) << r.status().ToString();
    EXPECT_TRUE(IsUnknownType(r.status()));
    EXPECT_FALSE(IsUnsupportedVersion(r.status()));
    EXPECT_NE(r.status().message().find("unknown frame type"), std::string::npos);
  }
}

TEST(Protocol, MissingOrMistypedTypeIsInvalid) {
  ExpectFails({{"op_id", "a"}}, Code::kInvalid, "missing type");
  ExpectFails({{"type", 3}}, Code::kInvalid, "type must be a string");
  ExpectFails({{"type", nullptr}}, Code::kInvalid, "type must be a string");
}

// ---- Size limits ----

TEST(Protocol, OversizedFrameIsTooLarge) {
  std::string big(kMaxFrameBytes, 'x');
  json j = Parsed(Event{"op-1", 1, EventKind::kOutput, "x"});
  j["padding"] = big;
  Result<Frame> r = Decode(j.dump());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kTooLarge) << r.status().ToString();
}

TEST(Protocol, FrameAtTheLimitIsAccepted) {
  json j = Parsed(Ack{"op-1", 1});
  std::string base = j.dump();
  j["padding"] = "";
  std::size_t overhead = j.dump().size();
  j["padding"] = std::string(kMaxFrameBytes - overhead, 'x');
  std::string text = j.dump();
  ASSERT_EQ(text.size(), kMaxFrameBytes);
  EXPECT_TRUE(Decode(text).ok());
  EXPECT_EQ(Decode(text + " ").status().code(), Code::kTooLarge);
  EXPECT_LT(base.size(), text.size());
}

TEST(Protocol, EventDataOverItsCapIsTooLarge) {
  Event e{"op-1", 1, EventKind::kOutput, std::string(kMaxEventDataBytes - 2, 'a')};
  EXPECT_TRUE(Decode(Encode(e)).ok());  // the quotes make it exactly the cap
  e.data = std::string(kMaxEventDataBytes - 1, 'a');
  Result<Frame> r = Decode(Encode(e));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kTooLarge) << r.status().ToString();
  EXPECT_NE(r.status().message().find("event.data"), std::string::npos);
}

TEST(Protocol, LabelLimits) {
  Hello h = SampleHello();
  h.labels.assign(kMaxLabels, "l");
  EXPECT_TRUE(Decode(Encode(h)).ok());
  h.labels.push_back("one-too-many");
  ExpectFails(Parsed(h), Code::kInvalid, "hello.labels: more than 32");
  h.labels = {std::string(kMaxLabelChars, 'a')};
  EXPECT_TRUE(Decode(Encode(h)).ok());
  h.labels = {std::string(kMaxLabelChars + 1, 'a')};
  ExpectFails(Parsed(h), Code::kInvalid, "hello.labels: entries must be 1..64");
  h.labels = {""};
  ExpectFails(Parsed(h), Code::kInvalid, "hello.labels: entries must be 1..64");
  json j = Parsed(SampleHello());
  j["labels"] = json::array({"ok", 5});
  ExpectFails(j, Code::kInvalid, "hello.labels: entries must be strings");
}

// ---- Nesting ----

TEST(Protocol, ArgsNestedToTheLimitAreAccepted) {
  Op op = SampleOp();
  op.args = {{"deep", NestedArrays(kMaxNestingDepth - 1)}};
  Result<Frame> r = Decode(Encode(op));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(*r == Frame(op));
}

TEST(Protocol, ArgsNestedTooDeepAreInvalid) {
  Op op = SampleOp();
  op.args = {{"deep", NestedArrays(kMaxNestingDepth)}};
  ExpectFails(Parsed(op), Code::kInvalid, "op.args: nested deeper than 16");
}

TEST(Protocol, ResultValueAndEventDataNestedTooDeepAreInvalid) {
  json deep = {{"deep", NestedArrays(kMaxNestingDepth)}};
  ExpectFails(Parsed(OpResult{"op-1", true, "", deep}), Code::kInvalid, "result.value: nested");
  ExpectFails(Parsed(Event{"op-1", 1, EventKind::kState, deep}), Code::kInvalid,
              "event.data: nested");
  EXPECT_TRUE(
      Decode(Encode(Event{"op-1", 1, EventKind::kState, NestedArrays(kMaxNestingDepth)})).ok());
}

TEST(Protocol, HostileNestingIsRefusedBeforeParsing) {
  std::string text =
      R"({"type":"op","v":1,"args":)" + std::string(500000, '[') + std::string(500000, ']') + "}";
  ASSERT_LE(text.size(), kMaxFrameBytes);
  Result<Frame> r = Decode(text);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalid);
  EXPECT_NE(r.status().message().find("nested deeper"), std::string::npos);
  // Brackets inside strings do not count.
  Op op = SampleOp();
  op.args = {{"s", std::string(1000, '[') + "\\\"{"}};
  EXPECT_TRUE(Decode(Encode(op)).ok());
}

// ---- Ids, seq and member types ----

TEST(Protocol, IdSyntax) {
  EXPECT_TRUE(IsValidId("a"));
  EXPECT_TRUE(IsValidId("Op_1.retry-2"));
  EXPECT_TRUE(IsValidId(std::string(kMaxIdChars, 'x')));
  EXPECT_FALSE(IsValidId(""));
  EXPECT_FALSE(IsValidId(std::string(kMaxIdChars + 1, 'x')));
  for (const char* bad : {"a b", "a/b", "a:b", "ä", "a\nb", "../x", "a*"}) {
    EXPECT_FALSE(IsValidId(bad)) << bad;
  }
}

TEST(Protocol, BadOpIdsAreInvalidInEveryFrame) {
  for (const Frame& f : {Frame(SampleOp()), Frame(Event{"x", 1, EventKind::kOutput, 1}),
                         Frame(OpResult{"x", true, "", json::object()}), Frame(Cancel{"x"}),
                         Frame(Ack{"x", 1}), Frame(StopOp{"x"})}) {
    json j = Parsed(f);
    for (json bad : {json(""), json("a b"), json(std::string(65, 'a')), json(7), json(nullptr)}) {
      j["op_id"] = bad;
      ExpectFails(j, Code::kInvalid, std::string(TypeOf(f)) + ".op_id");
    }
    j.erase("op_id");
    ExpectFails(j, Code::kInvalid, std::string(TypeOf(f)) + ".op_id: missing");
  }
}

TEST(Protocol, SeqZeroIsInvalid) {
  ExpectFails(Parsed(Event{"op-1", 0, EventKind::kOutput, "x"}), Code::kInvalid,
              "event.seq: must be >= 1");
  ExpectFails(Parsed(Ack{"op-1", 0}), Code::kInvalid, "ack.seq: must be >= 1");
  Hello h = SampleHello();
  h.last_seq["op-9"] = 0;
  ExpectFails(Parsed(h), Code::kInvalid, "hello.last_seq: values must be integers >= 1");
}

TEST(Protocol, NumbersMustBeUnsignedIntegers) {
  json j = Parsed(Ack{"op-1", 1});
  for (json bad : {json(-1), json(1.5), json("1"), json(true), json(1e30)}) {
    j["seq"] = bad;
    ExpectFails(j, Code::kInvalid, "ack.seq: must be an unsigned integer");
  }
  j = Parsed(SampleOp());
  j["term"] = -3;
  ExpectFails(j, Code::kInvalid, "op.term: must be an unsigned integer");
  j = Parsed(Heartbeat{5, {}});
  j["time_ms"] = "now";
  ExpectFails(j, Code::kInvalid, "heartbeat.time_ms: must be an unsigned integer");
}

TEST(Protocol, HelloMemberTypes) {
  json j = Parsed(SampleHello());
  j["node"] = "bad node";
  ExpectFails(j, Code::kInvalid, "hello.node");
  j = Parsed(SampleHello());
  j["agent_version"] = 1;
  ExpectFails(j, Code::kInvalid, "hello.agent_version: must be a string");
  j = Parsed(SampleHello());
  j["labels"] = "gpu";
  ExpectFails(j, Code::kInvalid, "hello.labels: must be an array");
  j = Parsed(SampleHello());
  j["capabilities"] = json::array();
  ExpectFails(j, Code::kInvalid, "hello.capabilities: must be an object");
  j = Parsed(SampleHello());
  j["capabilities"]["docker"] = "yes";
  ExpectFails(j, Code::kInvalid, "hello.capabilities.docker: must be a boolean");
  j = Parsed(SampleHello());
  j["capabilities"].erase("repos");
  ExpectFails(j, Code::kInvalid, "hello.capabilities.repos: missing");
  j = Parsed(SampleHello());
  j["capabilities"]["runtimes"] = json::array({1});
  ExpectFails(j, Code::kInvalid, "hello.capabilities.runtimes: entries must be strings");
  j = Parsed(SampleHello());
  j["last_seq"] = json{{"bad id", 1}};
  ExpectFails(j, Code::kInvalid, "hello.last_seq: keys must be op ids");
  j = Parsed(SampleHello());
  j.erase("last_seq");
  ExpectFails(j, Code::kInvalid, "hello.last_seq: missing");
}

TEST(Protocol, WelcomeNeedsALeaseLongerThanTheHeartbeat) {
  ExpectFails(Parsed(Welcome{"n", 1, 5000, 5000}), Code::kInvalid, "welcome.lease_ms");
  ExpectFails(Parsed(Welcome{"n", 1, 0, 5000}), Code::kInvalid,
              "welcome.heartbeat_ms: must be >= 1");
  json j = Parsed(Welcome{"n", 1, 1000, 5000});
  j.erase("term");
  ExpectFails(j, Code::kInvalid, "welcome.term: missing");
}

TEST(Protocol, OpMemberRules) {
  json j = Parsed(SampleOp());
  j["args"] = json::array();
  ExpectFails(j, Code::kInvalid, "op.args: must be an object");
  j.erase("args");
  ExpectFails(j, Code::kInvalid, "op.args: missing");
  for (json bad : {json(""), json("Build"), json("start-instance"), json(3)}) {
    j = Parsed(SampleOp());
    j["kind"] = bad;
    ExpectFails(j, Code::kInvalid, "op.kind");
  }
  j = Parsed(SampleOp());
  j["deadline_ms"] = 0;
  ExpectFails(j, Code::kInvalid, "op.deadline_ms: must be >= 1");
}

TEST(Protocol, EventKindAndDataRules) {
  json j = Parsed(Event{"op-1", 1, EventKind::kOutput, "x"});
  j["kind"] = "log";
  ExpectFails(j, Code::kInvalid, "event.kind: must be output, progress or state");
  j["kind"] = 1;
  ExpectFails(j, Code::kInvalid, "event.kind: must be a string");
  j = Parsed(Event{"op-1", 1, EventKind::kOutput, "x"});
  j.erase("data");
  ExpectFails(j, Code::kInvalid, "event.data: missing");
}

TEST(Protocol, ResultErrorRules) {
  ExpectFails(Parsed(OpResult{"op-1", false, "", json::object()}), Code::kInvalid,
              "result.error: must not be empty");
  json j = Parsed(OpResult{"op-1", false, "boom", json::object()});
  j.erase("error");
  ExpectFails(j, Code::kInvalid, "result.error: missing");
  j["error"] = 5;
  ExpectFails(j, Code::kInvalid, "result.error: must be a string");
  j = Parsed(OpResult{"op-1", true, "", json::object()});
  j["error"] = "stale term";
  ExpectFails(j, Code::kInvalid, "result.error: must be absent when ok is true");
  j = Parsed(OpResult{"op-1", true, "", json::object()});
  j["ok"] = "true";
  ExpectFails(j, Code::kInvalid, "result.ok: must be a boolean");
  j = Parsed(OpResult{"op-1", true, "", json::object()});
  j["value"] = 3;
  ExpectFails(j, Code::kInvalid, "result.value: must be an object");
}

TEST(Protocol, HeartbeatRunningMustBeOpIds) {
  json j = Parsed(Heartbeat{5, {"op-1"}});
  j["running"] = json::array({"op-1", "no spaces"});
  ExpectFails(j, Code::kInvalid, "heartbeat.running");
  j["running"] = "op-1";
  ExpectFails(j, Code::kInvalid, "heartbeat.running: must be an array");
}

}  // namespace
}  // namespace slipway::protocol

namespace slipway::protocol {
namespace {

// What an agent says about itself ends up in logs and terminals: bounded, no control bytes.
TEST(ProtocolHello, AgentTextIsBoundedAndPrintable) {
  json h = Parsed(SampleHello());
  h["agent_version"] = "v1\n2026-11-28 info FAKE LOG LINE";
  ExpectFails(h, Code::kInvalid, "agent_version");
  h = Parsed(SampleHello());
  h["agent_version"] = std::string(65, 'v');
  ExpectFails(h, Code::kInvalid, "agent_version");
  h = Parsed(SampleHello());
  h["labels"] = json::array({"beta\u001b[31m"});
  ExpectFails(h, Code::kInvalid, "control characters");
  h = Parsed(SampleHello());
  h["capabilities"]["runtimes"] = json::array();
  for (int i = 0; i < 33; ++i) h["capabilities"]["runtimes"].push_back("r" + std::to_string(i));
  ExpectFails(h, Code::kInvalid, "runtimes");
  h = Parsed(SampleHello());
  h["last_seq"] = json::object();
  for (int i = 0; i < 4097; ++i) h["last_seq"]["op-" + std::to_string(i)] = 1;
  ExpectFails(h, Code::kInvalid, "last_seq");
  json beat = {{"type", "heartbeat"}, {"time_ms", 1}, {"running", json::array()}};
  for (int i = 0; i < 4097; ++i) beat["running"].push_back("op-" + std::to_string(i));
  ExpectFails(beat, Code::kInvalid, "running");
}

}  // namespace
}  // namespace slipway::protocol
