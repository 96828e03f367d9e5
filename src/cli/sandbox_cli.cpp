// Human renderings of the sandbox routes' answers (cli/sandbox_cli.h). Every field is read
// leniently: the table prints "-" for whatever the server left out.
#include "cli/sandbox_cli.h"

#include <fmt/format.h>

#include <chrono>
#include <iostream>

#include "cli/sandbox_args.h"

namespace slipway::cli {
namespace {

using json = nlohmann::json;

std::string Dash(const std::string& s) {
  return s.empty() ? "-" : s;
}

bool Flag(const json& j, const char* key) {
  auto it = j.is_object() ? j.find(key) : j.end();
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

// "healthy", "unhealthy" or "down" from {running, healthy}; a string as it is.
std::string HealthWord(const json& h) {
  if (h.is_string()) return h.get<std::string>();
  if (!h.is_object()) return "-";
  if (!Field(h, "status").empty()) return Field(h, "status");
  if (Flag(h, "healthy")) return "healthy";
  return Flag(h, "running") ? "unhealthy" : "down";
}

const json& Member(const json& j, const char* key) {
  static const json kNull;
  auto it = j.is_object() ? j.find(key) : j.end();
  return it == j.end() ? kNull : *it;
}

// "in 13d 4h", "in 25m", "expired" from a wall-clock time in ms; "-" for 0.
std::string Until(long long ms) {
  if (ms <= 0) return "-";
  long long now = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  long long s = (ms - now) / 1000;
  if (s <= 0) return "due";
  if (s >= 86400) return fmt::format("in {}d {}h", s / 86400, s % 86400 / 3600);
  if (s >= 3600) return fmt::format("in {}h {}m", s / 3600, s % 3600 / 60);
  return fmt::format("in {}m", std::max(1LL, s / 60));
}

// 1209600000 → "14d", 43200000 → "12h", 5400000 → "90m"; "-" for 0.
std::string Duration(long long ms) {
  if (ms <= 0) return "-";
  if (ms % 86400000 == 0) return fmt::format("{}d", ms / 86400000);
  if (ms % 3600000 == 0) return fmt::format("{}h", ms / 3600000);
  if (ms % 60000 == 0) return fmt::format("{}m", ms / 60000);
  return fmt::format("{}s", ms / 1000);
}

std::string Limits(const json& j) {
  double cpus = Member(j, "cpus").is_number() ? Member(j, "cpus").get<double>() : 0;
  std::string memory = FormatBytes(Number(j, "memory_bytes"));
  if (cpus <= 0 && memory == "-") return "none";
  return fmt::format("memory {}, cpus {}", memory, cpus > 0 ? fmt::format("{:g}", cpus) : "-");
}

void PrintServiceRow(const json& svc) {
  std::string branch = Field(svc, "branch");
  std::string commit = Field(svc, "commit").substr(0, 7);
  std::cout << fmt::format("{:<16} {:<20} {:<9} {:<6} {:<12} {:<10} {}\n", Field(svc, "name"),
                           branch.empty() ? "(upstream)" : branch, Dash(Field(svc, "route")),
                           Number(svc, "port"), Dash(Field(svc, "state")),
                           HealthWord(Member(svc, "health")), Dash(commit));
}

}  // namespace

std::string Field(const json& j, const char* key) {
  const json& v = Member(j, key);
  return v.is_string() ? v.get<std::string>() : "";
}

long long Number(const json& j, const char* key) {
  const json& v = Member(j, key);
  return v.is_number() ? v.get<long long>() : 0;
}

std::string SandboxName(const json& view) {
  return Field(view, "name");
}

std::string SandboxStatus(const json& view) {
  return Field(view, "status");
}

std::string SandboxUrl(const json& view) {
  std::string url = Field(view, "url");
  return url.empty() ? fmt::format(":{}", Number(view, "port")) : url;
}

void PrintSandbox(const json& v) {
  std::cout << fmt::format("sandbox {}: {}, health {}\n", SandboxName(v), SandboxStatus(v),
                           HealthWord(Member(v, "health")));
  std::cout << fmt::format("  url:          {} (entry {})\n", SandboxUrl(v),
                           Dash(Field(v, "entry")));
  std::cout << fmt::format("  template:     {}\n", Dash(Field(v, "template")));
  std::cout << fmt::format("  environment:  {}\n", Dash(Field(v, "environment")));
  std::cout << fmt::format("  limits:       {}\n", Limits(v));
  std::cout << fmt::format("  expires:      {} (after {} of inactivity)\n",
                           Until(Number(v, "expires_ms")), Duration(Number(v, "expire_after_ms")));
  std::cout << fmt::format("  created by:   {}\n", Dash(Field(v, "created_by")));
  std::cout << fmt::format("{:<16} {:<20} {:<9} {:<6} {:<12} {:<10} {}\n", "SERVICE", "BRANCH",
                           "ROUTE", "PORT", "STATE", "HEALTH", "COMMIT");
  const json& services = Member(v, "services");
  if (services.is_array())
    for (const auto& svc : services) PrintServiceRow(svc);
}

void PrintSandboxList(const json& answer) {
  std::cout << fmt::format("{:<20} {:<10} {:<6} {:<14} {:<12} {}\n", "SANDBOX", "STATUS", "PORT",
                           "TEMPLATE", "EXPIRES", "SERVICES");
  const json& list = Member(answer, "sandboxes");
  if (!list.is_array()) return;
  for (const auto& s : list) {
    std::string services;
    const json& svcs = Member(s, "services");
    for (const auto& svc : svcs.is_array() ? svcs : json::array()) {
      std::string branch = Field(svc, "branch");
      services += (services.empty() ? "" : " ") + Field(svc, "name") + ":" +
                  (branch.empty() ? "upstream" : branch);
    }
    std::cout << fmt::format("{:<20} {:<10} {:<6} {:<14} {:<12} {}\n", SandboxName(s),
                             SandboxStatus(s), Number(s, "port"), Dash(Field(s, "template")),
                             Until(Number(s, "expires_ms")), services);
  }
}

void PrintSnapshots(const json& answer) {
  std::cout << fmt::format("{:<8} {:<20} {:<16} {}\n", "ID", "SANDBOX", "BY", "CREATED (ms)");
  const json& list = Member(answer, "snapshots");
  if (!list.is_array()) return;
  for (const auto& s : list)
    std::cout << fmt::format("{:<8} {:<20} {:<16} {}\n", Number(s, "id"), Field(s, "sandbox"),
                             Dash(Field(s, "created_by")), Number(s, "created_ms"));
}

void PrintCheck(const json& r) {
  std::cout << fmt::format("check of sandbox {} (trace {}): HTTP {}\n", Field(r, "sandbox"),
                           Dash(Field(r, "trace")), Number(r, "status"));
  const json& hops = Member(r, "hops");
  bool flagged = false;
  int n = 0;
  for (const auto& h : hops.is_array() ? hops : json::array()) {
    bool carried = Flag(h, "sandbox_header");
    std::string mark = carried ? "header ✓" : "header ✗";
    if (!carried && !flagged) mark += "  ← the sandbox header was dropped before this hop";
    flagged = flagged || !carried;
    std::cout << fmt::format("  {:>2}. {:<16} via {:<16} → {:<22} {:>3} {:>5} ms  {}\n", ++n,
                             Dash(Field(h, "service")), Dash(Field(h, "listener")),
                             Dash(Field(h, "target")), Number(h, "status"), Number(h, "ms"), mark);
  }
  if (n == 0) std::cout << "  (no hop recorded)\n";
  if (Flag(r, "ok")) {
    std::cout << "ok: every hop carried the sandbox header\n";
  } else {
    std::string why = Field(r, "detail");
    if (why.empty()) why = Field(r, "error");
    std::cout << "problem: " << Dash(why) << "\n";
  }
}

}  // namespace slipway::cli
