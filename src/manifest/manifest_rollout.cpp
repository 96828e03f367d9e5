// slipway.yaml's `rollout:` and `notify:` sections (docs/ROLLOUTS.md).
#include <algorithm>
#include <set>

#include "manifest/manifest_sections.h"
#include "manifest/reader.h"
#include "notify/notifier.h"

namespace slipway::manifest_detail {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kMaxStages = 8;
constexpr std::size_t kMaxNotifyTargets = 16;
constexpr std::size_t kMaxUrlBytes = 2048;
constexpr std::size_t kMaxSecretBytes = 256;
const std::set<std::string> kNotifyEvents = {"started",     "succeeded", "failed",
                                             "rolled_back", "aborted",   "paused"};

std::vector<std::string> Labels(const YAML::Node& node, const std::string& key) {
  if (!node.IsSequence() && !node.IsScalar())
    Reader::Fail(node, key + ": expected a list of node labels, e.g. [beta]");
  std::vector<std::string> out;
  auto check = [&](const YAML::Node& item) {
    if (!item.IsScalar() || !IsNodeLabel(item.Scalar()))
      Reader::Fail(item, key +
                             ": a label is 1..64 printable characters without spaces, quotes, "
                             "commas, slashes or backslashes");
    if (out.size() == 32) Reader::Fail(item, key + ": at most 32 labels");
    out.push_back(item.Scalar());
  };
  if (node.IsScalar()) {
    check(node);
  } else {
    for (const auto& item : node) check(item);
  }
  if (out.empty()) Reader::Fail(node, key + ": at least one label");
  return out;
}

AnalysisSpec ReadAnalysis(const YAML::Node& a, const std::string& where) {
  Reader::Keys(a, where,
               {"interval", "min_requests", "max_error_rate", "max_error_rate_increase",
                "max_p95_ratio", "max_p95_ms", "failure_limit"});
  AnalysisSpec s;
  if (a["interval"]) s.interval = Reader::Duration(a["interval"], where + ".interval", 1s, 60s);
  if (a["min_requests"])
    s.min_requests = Reader::Int(a["min_requests"], where + ".min_requests", 1, 1'000'000'000);
  if (a["max_error_rate"])
    s.max_error_rate = Reader::Number(a["max_error_rate"], where + ".max_error_rate", 0, 1);
  if (a["max_error_rate_increase"])
    s.max_error_rate_increase =
        Reader::Number(a["max_error_rate_increase"], where + ".max_error_rate_increase", 0, 1);
  if (a["max_p95_ratio"])
    s.max_p95_ratio = Reader::Number(a["max_p95_ratio"], where + ".max_p95_ratio", 1, 1000);
  if (a["max_p95_ms"])
    s.max_p95_ms = Reader::Number(a["max_p95_ms"], where + ".max_p95_ms", 1, 600'000);
  if (a["failure_limit"])
    s.failure_limit = Reader::Int(a["failure_limit"], where + ".failure_limit", 1, 100);
  return s;
}

OnInconclusive ReadPolicy(const YAML::Node& node, const std::string& key) {
  std::string v = Reader::Scalar(node, key);
  if (v == "abort") return OnInconclusive::kAbort;
  if (v == "promote") return OnInconclusive::kPromote;
  if (v == "pause") return OnInconclusive::kPause;
  Reader::Fail(node, key + ": expected abort, promote or pause");
}

RolloutStageSpec ReadStage(const YAML::Node& st, const std::string& where, bool last) {
  Reader::Keys(st, where, {"nodes", "weight", "bake", "max_bake", "on_inconclusive", "analysis"});
  if (!st["nodes"]) Reader::Fail(st, where + ".nodes: required (the labels of its nodes)");
  RolloutStageSpec s;
  s.nodes = Labels(st["nodes"], where + ".nodes");
  s.weight = last ? 100 : 0;
  if (st["weight"]) {
    s.weight = Reader::Int(st["weight"], where + ".weight", 0, 100);
    if (last && s.weight != 100)
      Reader::Fail(st["weight"], where + ".weight: the last stage takes all the traffic (100)");
    if (!last && s.weight == 100)
      Reader::Fail(st["weight"], where + ".weight: only the last stage takes 100");
  }
  if (st["bake"]) s.bake = Reader::Duration(st["bake"], where + ".bake", 0ms, 24h);
  s.max_bake = s.bake;
  if (st["max_bake"]) {
    s.max_bake = Reader::Duration(st["max_bake"], where + ".max_bake", 0ms, 24h);
    if (s.max_bake < s.bake)
      Reader::Fail(st["max_bake"], where + ".max_bake: must be at least bake");
  }
  if (st["on_inconclusive"])
    s.on_inconclusive = ReadPolicy(st["on_inconclusive"], where + ".on_inconclusive");
  if (st["analysis"]) {
    s.analysis = ReadAnalysis(st["analysis"], where + ".analysis");
    if (last) Reader::Fail(st["analysis"], where + ".analysis: the last stage has no canary");
    if (s.max_bake < s.analysis->interval)
      Reader::Fail(st["analysis"], where +
                                       ".analysis: bake (or max_bake) must last at least one "
                                       "interval, or nothing is ever analysed");
  }
  if (last && (st["bake"] || st["max_bake"] || st["on_inconclusive"]))
    Reader::Fail(st,
                 where + ": the last stage is the full switch (deploy.watch_window watches it)");
  return s;
}

bool CleanUrl(const std::string& url) {
  auto rest = url.rfind("https://", 0) == 0  ? url.substr(8)
              : url.rfind("http://", 0) == 0 ? url.substr(7)
                                             : std::string();
  if (rest.empty() || rest[0] == '/' || rest[0] == ':') return false;
  return std::all_of(url.begin(), url.end(), [](unsigned char c) { return c > 0x20 && c < 0x7f; });
}

NotifySpec ReadTarget(const YAML::Node& t, const std::string& where) {
  Reader::Keys(t, where, {"kind", "url", "secret", "events"});
  NotifySpec n;
  if (!t["kind"]) Reader::Fail(t, where + ".kind: required (webhook, slack or teams)");
  n.kind = Reader::Scalar(t["kind"], where + ".kind");
  if (n.kind != "webhook" && n.kind != "slack" && n.kind != "teams")
    Reader::Fail(t["kind"], where + ".kind: expected webhook, slack or teams");
  if (!t["url"]) Reader::Fail(t, where + ".url: required");
  n.url = Reader::Scalar(t["url"], where + ".url", kMaxUrlBytes);
  // The URL is a credential (a Slack URL is one): never quoted back.
  if (!CleanUrl(n.url))
    Reader::Fail(t["url"], where + ".url: expected http://HOST/… or https://HOST/… without spaces");
  if (t["secret"]) {
    if (n.kind != "webhook") Reader::Fail(t["secret"], where + ".secret: only for kind webhook");
    n.secret = Reader::Scalar(t["secret"], where + ".secret", kMaxSecretBytes);
  }
  // The notifier's own rules too (no user info, a port in range, …), so a target the
  // notifier would refuse at delivery is refused here, where the author sees it.
  NotifyTarget shape;
  shape.kind = n.kind;
  shape.url = n.url;
  shape.secret = n.secret;
  if (Status s = ValidateTarget(shape); !s.ok()) Reader::Fail(t["url"], where + "." + s.message());
  if (t["events"]) {
    if (!t["events"].IsSequence()) Reader::Fail(t["events"], where + ".events: expected a list");
    for (const auto& e : t["events"]) {
      std::string v = Reader::Scalar(e, where + ".events");
      if (!kNotifyEvents.count(v))
        Reader::Fail(e, where + ".events: '" + Shown(v) +
                            "' is not one of started, succeeded, failed, rolled_back, "
                            "aborted, paused");
      if (std::find(n.events.begin(), n.events.end(), v) == n.events.end()) n.events.push_back(v);
    }
  }
  return n;
}

}  // namespace

void ReadRollout(const YAML::Node& r, Manifest& m) {
  Reader::Keys(r, "rollout", {"stages"});
  const YAML::Node stages = r["stages"];
  if (!stages || !stages.IsSequence() || stages.size() == 0)
    Reader::Fail(stages ? stages : r, "rollout.stages: expected a list of 1 to 8 stages");
  if (stages.size() > kMaxStages) Reader::Fail(stages, "rollout.stages: at most 8 stages");
  int weight = 0;
  for (std::size_t i = 0; i < stages.size(); ++i) {
    std::string where = "rollout.stages[" + std::to_string(i) + "]";
    m.rollout.push_back(ReadStage(stages[i], where, i + 1 == stages.size()));
    if (m.rollout.back().weight < weight)
      Reader::Fail(stages[i], where + ".weight: a later stage cannot take less traffic (" +
                                  std::to_string(weight) + " before)");
    weight = m.rollout.back().weight;
  }
}

void ReadNotify(const YAML::Node& n, Manifest& m) {
  if (!n.IsSequence()) Reader::Fail(n, "notify: expected a list of targets");
  for (std::size_t i = 0; i < n.size(); ++i) {
    if (i == kMaxNotifyTargets) Reader::Fail(n[i], "notify: at most 16 targets");
    m.notify.push_back(ReadTarget(n[i], "notify[" + std::to_string(i) + "]"));
  }
}

void CheckRollout(const YAML::Node& root, const Manifest& m) {
  if (m.rollout.empty()) return;
  if (m.runtime == "swarm")
    Reader::Fail(root["rollout"], "rollout: not for runtime swarm (Swarm updates its own tasks)");
  if (!m.nodes.empty())
    Reader::Fail(root["nodes"], "nodes: with rollout, each stage names its nodes");
}

}  // namespace slipway::manifest_detail

namespace slipway::manifest_detail {

nlohmann::json RolloutToJson(const std::vector<RolloutStageSpec>& stages) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& s : stages) {
    nlohmann::json j = {{"nodes", s.nodes},
                        {"weight", s.weight},
                        {"bake_ms", s.bake.count()},
                        {"max_bake_ms", s.max_bake.count()},
                        {"on_inconclusive", ToString(s.on_inconclusive)}};
    if (const auto& a = s.analysis) {
      nlohmann::json aj = {{"interval_ms", a->interval.count()},
                           {"min_requests", a->min_requests},
                           {"max_error_rate_increase", a->max_error_rate_increase},
                           {"failure_limit", a->failure_limit}};
      if (a->max_error_rate) aj["max_error_rate"] = *a->max_error_rate;
      if (a->max_p95_ratio) aj["max_p95_ratio"] = *a->max_p95_ratio;
      if (a->max_p95_ms) aj["max_p95_ms"] = *a->max_p95_ms;
      j["analysis"] = aj;
    }
    out.push_back(j);
  }
  return out;
}

std::vector<RolloutStageSpec> RolloutFromJson(const nlohmann::json& j) {
  std::vector<RolloutStageSpec> out;
  for (const auto& sj : j) {
    RolloutStageSpec s;
    s.nodes = sj.at("nodes").get<std::vector<std::string>>();
    s.weight = sj.at("weight").get<int>();
    s.bake = std::chrono::milliseconds(sj.value("bake_ms", 0LL));
    s.max_bake = std::chrono::milliseconds(sj.value("max_bake_ms", 0LL));
    std::string p = sj.value("on_inconclusive", "abort");
    s.on_inconclusive = p == "promote" ? OnInconclusive::kPromote
                        : p == "pause" ? OnInconclusive::kPause
                                       : OnInconclusive::kAbort;
    if (sj.contains("analysis")) {
      const auto& aj = sj["analysis"];
      AnalysisSpec a;
      a.interval = std::chrono::milliseconds(aj.value("interval_ms", 10000LL));
      a.min_requests = aj.value("min_requests", 50LL);
      a.max_error_rate_increase = aj.value("max_error_rate_increase", 0.01);
      a.failure_limit = aj.value("failure_limit", 2);
      if (aj.contains("max_error_rate")) a.max_error_rate = aj["max_error_rate"].get<double>();
      if (aj.contains("max_p95_ratio")) a.max_p95_ratio = aj["max_p95_ratio"].get<double>();
      if (aj.contains("max_p95_ms")) a.max_p95_ms = aj["max_p95_ms"].get<double>();
      s.analysis = a;
    }
    out.push_back(s);
  }
  return out;
}

}  // namespace slipway::manifest_detail
