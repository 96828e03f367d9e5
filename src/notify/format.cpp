// Targets (validation, display) and the three bodies. Pure.
#include <algorithm>
#include <string_view>

#include "net/url_client.h"
#include "notify/notifier.h"

namespace slipway {
namespace {

using json = nlohmann::json;
namespace limits = notify_limits;

constexpr std::size_t kMaxText = 2000;      // an error or a commit in a body
constexpr std::size_t kMaxAnalysis = 8192;  // the analysis's JSON
constexpr std::size_t kMaxShownHost = 253;  // the longest DNS name
constexpr std::size_t kMaxEvents = 16;      // entries of a target's events list
constexpr std::size_t kMaxShownWord = 32;   // a caller's word repeated in a message

bool IsKnownKind(std::string_view kind) {
  return kind == "webhook" || kind == "slack" || kind == "teams";
}

// Letters, digits and `extra`.
bool IsWord(std::string_view s, std::string_view extra) {
  return std::all_of(s.begin(), s.end(), [extra](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           extra.find(c) != std::string_view::npos;
  });
}

// The rule of app names: lower-case letters, digits and '-', starting with a letter, 1..63.
bool IsAppName(std::string_view name) {
  if (name.empty() || name.size() > 63 || name[0] < 'a' || name[0] > 'z') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

// A caller's word, for a message: as written when it is short and plain, else nothing.
std::string Quoted(std::string_view word) {
  if (word.empty() || word.size() > kMaxShownWord || !IsWord(word, "_-.")) return "";
  return " '" + std::string(word) + "'";
}

// At most `max` bytes of `text`, cut on a character boundary, with "…" when cut.
std::string Clip(const std::string& text, std::size_t max = kMaxText) {
  if (text.size() <= max) return text;
  std::size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut) + "\u2026";
}

// One line: every control character (newlines, tabs, escapes) becomes a space.
std::string OneLine(std::string text) {
  for (auto& c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return text;
}

std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json Analysis(const json& analysis) {
  if (analysis.is_null() || Dump(analysis).size() > kMaxAnalysis) return nullptr;
  return analysis;
}

// What happened, in words: "rolled back", "rollout aborted".
std::string EventWords(const std::string& event) {
  if (event == "rolled_back") return "rolled back";
  if (event == "aborted") return "rollout aborted";
  if (event == "paused") return "rollout paused";
  return event;
}

// "hello: deployment 12 rolled back"
std::string Headline(const Notification& n) {
  return n.app + ": deployment " + std::to_string(n.deployment_id) + " " + EventWords(n.event);
}

std::string ShortCommit(const std::string& commit) {
  return OneLine(commit.substr(0, 7));
}

// The error, or else the rollout analysis's reason; "" when neither.
std::string Reason(const Notification& n) {
  if (!n.error.empty()) return n.error;
  if (n.analysis.is_object()) {
    auto it = n.analysis.find("reason");
    if (it != n.analysis.end() && it->is_string()) return it->get<std::string>();
  }
  return "";
}

// Slack's escaping of message text: &, < and > (which would open a mention or a link).
std::string SlackEscape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '&')
      out += "&amp;";
    else if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else
      out += c;
  }
  return out;
}

std::string ThemeColor(const std::string& event) {
  if (event == "succeeded") return "2EB886";
  if (event == "started") return "0078D7";
  if (event == "paused") return "F2C744";
  return "D00000";  // failed, rolled_back, aborted
}

}  // namespace

bool IsNotifyEvent(std::string_view event) {
  return std::find(std::begin(kNotifyEvents), std::end(kNotifyEvents), event) !=
         std::end(kNotifyEvents);
}

bool NotifyTarget::Wants(std::string_view event) const {
  return events.empty() || std::find(events.begin(), events.end(), event) != events.end();
}

bool NotifyTarget::ForApp(std::string_view app) const {
  return apps.empty() || std::find(apps.begin(), apps.end(), app) != apps.end();
}

std::string ShownTarget(const NotifyTarget& target) {
  std::string kind = IsKnownKind(target.kind) ? target.kind : "?";
  if (target.url.size() > limits::kUrlBytes) return kind + " ?";
  auto url = net::ParseHttpUrl(target.url);
  if (!url.ok() || url->host.size() > kMaxShownHost) return kind + " ?";
  return kind + " " + url->host;
}

Status ValidateTarget(const NotifyTarget& t) {
  if (!IsKnownKind(t.kind)) return Invalid("kind: must be webhook, slack or teams");
  if (t.name.size() > limits::kNameBytes || !IsWord(t.name, "._-"))
    return Invalid("name: at most 64 letters, digits, '.', '_' or '-'");
  if (t.url.empty()) return Invalid("url: required");
  if (t.url.size() > limits::kUrlBytes)
    return Invalid("url: over " + std::to_string(limits::kUrlBytes) + " bytes");
  auto url = net::ParseHttpUrl(t.url);
  if (!url.ok()) return Invalid("url: " + url.status().message());
  if (url->host.size() > kMaxShownHost) return Invalid("url: the host is over 253 bytes");
  if (t.secret.size() > limits::kSecretBytes)
    return Invalid("secret: over " + std::to_string(limits::kSecretBytes) + " bytes");
  if (!t.secret.empty() && t.kind != "webhook")
    return Invalid("secret: only a webhook target signs its body (" + t.kind +
                   " checks no signature)");
  if (t.events.size() > kMaxEvents)
    return Invalid("events: at most " + std::to_string(kMaxEvents) + " entries");
  for (const auto& e : t.events) {
    if (!IsNotifyEvent(e))
      return Invalid("events: unknown event" + Quoted(e) +
                     " (started, succeeded, failed, rolled_back, aborted, paused)");
  }
  if (t.apps.size() > limits::kApps)
    return Invalid("apps: at most " + std::to_string(limits::kApps) + " entries");
  for (const auto& a : t.apps) {
    if (!IsAppName(a)) return Invalid("apps: '" + Clip(OneLine(a), 64) + "' is not an app name");
  }
  if (!t.ca_file.empty()) {
    if (!url->tls) return Invalid("ca_file: only for an https:// url");
    if (t.ca_file.size() > limits::kPathBytes || t.ca_file.front() != '/' ||
        std::any_of(t.ca_file.begin(), t.ca_file.end(),
                    [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }))
      return Invalid("ca_file: must be an absolute path");
  }
  return Status::Ok();
}

std::string WebhookBody(const Notification& n) {
  json j = {{"event", n.event},
            {"app", n.app},
            {"deployment_id", n.deployment_id},
            {"release", n.release},
            {"commit", Clip(n.commit)},
            {"status", n.status},
            {"error", Clip(n.error)},
            {"stage", n.stage},
            {"analysis", Analysis(n.analysis)},
            {"time_ms", n.time_ms}};
  return Dump(j);
}

std::string SlackBody(const Notification& n) {
  std::string details;
  auto add = [&details](const std::string& part) {
    details += (details.empty() ? "" : ", ") + part;
  };
  if (n.release > 0) add("release " + std::to_string(n.release));
  if (!n.commit.empty()) add("commit " + ShortCommit(n.commit));
  if (!n.stage.empty()) add("stage " + OneLine(Clip(n.stage, 64)));
  std::string text = Headline(n);
  if (!details.empty()) text += " (" + details + ")";
  if (std::string reason = Reason(n); !reason.empty()) text += ": " + OneLine(Clip(reason));
  return Dump(json{{"text", SlackEscape(text)}});
}

std::string TeamsBody(const Notification& n) {
  json facts = json::array();
  auto fact = [&facts](const std::string& name, const std::string& value) {
    if (!value.empty()) facts.push_back({{"name", name}, {"value", value}});
  };
  fact("App", n.app);
  fact("Deployment", std::to_string(n.deployment_id));
  if (n.release > 0) fact("Release", std::to_string(n.release));
  fact("Commit", ShortCommit(n.commit));
  fact("Stage", OneLine(Clip(n.stage, 64)));
  fact("Status", n.status);
  fact("Error", OneLine(Clip(Reason(n))));
  std::string headline = Headline(n);
  json card = {{"@type", "MessageCard"}, {"@context", "https://schema.org/extensions"},
               {"summary", headline},    {"themeColor", ThemeColor(n.event)},
               {"title", headline},      {"sections", json::array({{{"facts", facts}}})}};
  return Dump(card);
}

}  // namespace slipway
