#include "gateway/tap.h"

namespace slipway::gateway {
namespace {

constexpr auto npos = std::string_view::npos;
constexpr std::string_view kHeader = "x-slipway-sandbox";
constexpr std::string_view kMember = "slipway-sandbox";

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A malformed escape is kept as written: the tap shows what arrived rather than dropping it.
std::string PercentDecoded(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    int hi = s[i] == '%' && i + 2 < s.size() ? HexValue(s[i + 1]) : -1;
    int lo = hi >= 0 ? HexValue(s[i + 2]) : -1;
    if (lo < 0) {
      out.push_back(s[i]);
      continue;
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

// The member `key` of one baggage header value ("k=v;prop, k2=v2"), or false.
bool BaggageMember(std::string_view list, std::string_view key, std::string_view& value) {
  while (!list.empty()) {
    auto end = list.find(',');
    std::string_view member = TrimOws(list.substr(0, end));
    list = end == npos ? std::string_view{} : list.substr(end + 1);
    member = member.substr(0, member.find(';'));
    auto eq = member.find('=');
    if (eq != npos && TrimOws(member.substr(0, eq)) == key) {
      value = TrimOws(member.substr(eq + 1));
      return true;
    }
  }
  return false;
}

}  // namespace

std::string SandboxOf(const std::vector<http1::HeaderField>& headers) {
  std::string_view header = http1::Find(headers, kHeader);
  if (!header.empty()) return std::string(header);
  std::string_view value;
  for (const auto& h : headers)
    if (http1::IEquals(h.name, "baggage") && BaggageMember(h.value, kMember, value))
      return PercentDecoded(value);
  return {};
}

}  // namespace slipway::gateway
