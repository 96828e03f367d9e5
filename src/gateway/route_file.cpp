#include "gateway/route_file.h"

#include <yaml-cpp/yaml.h>

#include <boost/asio/ip/address.hpp>

#include <cctype>
#include <charconv>
#include <fstream>
#include <set>
#include <sstream>

#include "manifest/manifest.h"

namespace slipway::gateway {
namespace {

constexpr std::size_t kMaxText = 8 << 20;
constexpr std::size_t kMaxRoutes = 100000;
constexpr std::size_t kMaxTargets = 64;
constexpr std::size_t kMaxSides = 16;
constexpr std::size_t kMaxNodes = 1000000;

struct FileError {
  YAML::Mark mark;
  std::string message;
};

// Reads nodes with a budget, so aliases cannot make a small file cost a lot.
class Reader {
 public:
  [[noreturn]] static void Fail(const YAML::Node& node, const std::string& msg) {
    throw FileError{node.Mark(), msg};
  }
  // Counts the node against the budget; a mapping with a key given twice is refused (YAML
  // parsers disagree on which one wins, so an operator's typo would silently pick one).
  void Visit(const YAML::Node& node) {
    if (++visited_ > kMaxNodes) Fail(node, "the file expands to too many YAML nodes");
    if (!node.IsMap()) return;
    std::set<std::string> keys;
    for (const auto& kv : node) {
      if (++visited_ > kMaxNodes) Fail(node, "the file expands to too many YAML nodes");
      if (kv.first.IsScalar() && !keys.insert(kv.first.Scalar()).second)
        Fail(kv.first, "'" + kv.first.Scalar() + "' is given twice");
    }
  }
  std::string Scalar(const YAML::Node& node, const std::string& key, std::size_t max = 1024) {
    Visit(node);
    if (!node.IsScalar()) Fail(node, key + ": expected a string");
    if (node.Scalar().size() > max) Fail(node, key + ": longer than " + std::to_string(max));
    return node.Scalar();
  }
  long long Integer(const YAML::Node& node, const std::string& key, long long lo, long long hi) {
    std::string s = Scalar(node, key, 32);
    long long v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || v < lo || v > hi)
      Fail(node, key + ": expected a whole number from " + std::to_string(lo) + " to " +
                     std::to_string(hi));
    return v;
  }
  std::vector<std::string> List(const YAML::Node& node, const std::string& key, std::size_t max) {
    Visit(node);
    std::vector<std::string> out;
    if (node.IsScalar()) return {Scalar(node, key)};
    if (!node.IsSequence()) Fail(node, key + ": expected a string or a list");
    if (node.size() == 0 || node.size() > max)
      Fail(node, key + ": expected 1 to " + std::to_string(max) + " entries");
    for (const auto& item : node) out.push_back(Scalar(item, key));
    return out;
  }

 private:
  std::size_t visited_ = 0;
};

// Names end up in response headers (the sticky cookie), metric labels and log lines:
// letters, digits, '.', '_' and '-' only.
bool ValidName(const std::string& n) {
  if (n.empty() || n.size() > 64) return false;
  for (char c : n)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
      return false;
  return true;
}

// A header or cookie name: an RFC 9110 token.
bool ValidToken(const std::string& n) {
  static constexpr std::string_view kExtra = "!#$%&'*+-.^_`|~";
  if (n.empty() || n.size() > 128) return false;
  for (char c : n)
    if (!std::isalnum(static_cast<unsigned char>(c)) && kExtra.find(c) == std::string_view::npos)
      return false;
  return true;
}

bool ValidValue(const std::string& v) {
  for (unsigned char c : v)
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  return true;
}

std::string CheckedName(Reader& r, const YAML::Node& node, const std::string& key) {
  std::string n = r.Scalar(node, key, 64);
  if (!ValidName(n)) Reader::Fail(node, key + ": use letters, digits, '.', '_' and '-' only");
  return n;
}

bool ValidHost(const std::string& h) {
  if (h == "*") return true;
  std::string_view s = h;
  if (s.starts_with("*.")) s.remove_prefix(2);
  if (s.empty() || s.size() > 253) return false;
  std::size_t label = 0;
  for (char c : s) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || (c >= 'A' && c <= 'Z');
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if (!ok || ++label > 63) {
      return false;
    }
  }
  return label > 0;
}

bool ValidPath(const std::string& p) {
  if (p.empty() || p.front() != '/' || p.size() > 1024) return false;
  for (unsigned char c : p)
    if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#') return false;
  return true;
}

std::shared_ptr<Target> ParseTarget(const YAML::Node& node, const std::string& text) {
  ListenOn on;
  if (!ParseListen(text, on) || !on.set.empty() || on.port == 0)
    Reader::Fail(node, "to: expected HOST:PORT with an IP address, got '" + text + "'");
  return std::make_shared<Target>(text, on.address, on.port);
}

std::vector<std::shared_ptr<Target>> Targets(Reader& r, const YAML::Node& node) {
  std::vector<std::shared_ptr<Target>> out;
  for (const auto& text : r.List(node, "to", kMaxTargets)) out.push_back(ParseTarget(node, text));
  return out;
}

void ParseSides(Reader& r, const YAML::Node& node, Route& route) {
  r.Visit(node);
  if (!node.IsSequence() || node.size() == 0 || node.size() > kMaxSides)
    Reader::Fail(node, "sides: expected a list of 1 to 16 sides");
  std::set<std::string> names;
  for (const auto& s : node) {
    r.Visit(s);
    if (!s.IsMap() || !s["name"] || !s["to"])
      Reader::Fail(s, "sides: each side needs a name and to");
    Side side;
    side.name = CheckedName(r, s["name"], "sides.name");
    if (!names.insert(side.name).second) Reader::Fail(s["name"], "sides: duplicate name");
    side.weight =
        s["weight"] ? static_cast<std::uint32_t>(r.Integer(s["weight"], "sides.weight", 0, 1000000))
                    : 1;
    side.targets = Targets(r, s["to"]);
    route.sides.push_back(std::move(side));
  }
}

void ParseWhen(Reader& r, const YAML::Node& node, Route& route) {
  r.Visit(node);
  if (!node.IsMap()) Reader::Fail(node, "when: expected header, baggage or cookie");
  for (const auto& kv : node) {
    std::string kind = r.Scalar(kv.first, "when");
    Predicate::Kind k = Predicate::Kind::kHeader;
    if (kind == "baggage")
      k = Predicate::Kind::kBaggage;
    else if (kind == "cookie")
      k = Predicate::Kind::kCookie;
    else if (kind != "header")
      Reader::Fail(kv.first, "when: unknown '" + kind + "' (header, baggage or cookie)");
    if (!kv.second.IsMap() || kv.second.size() == 0)
      Reader::Fail(kv.second, "when." + kind + ": expected NAME: VALUE");
    r.Visit(kv.second);
    for (const auto& p : kv.second) {
      Predicate pred{k, r.Scalar(p.first, "when." + kind, 128),
                     r.Scalar(p.second, "when." + kind, 1024)};
      if (!ValidToken(pred.name)) Reader::Fail(p.first, "when." + kind + ": not a valid name");
      if (!ValidValue(pred.value))
        Reader::Fail(p.second, "when." + kind + ": control characters in the value");
      route.when.push_back(std::move(pred));
    }
  }
}

void ParseSticky(Reader& r, const YAML::Node& node, Route& route) {
  r.Visit(node);
  if (!node.IsMap() || node.size() != 1)
    Reader::Fail(node, "sticky: expected {cookie: NAME} or {header: NAME}");
  auto kv = *node.begin();
  std::string kind = r.Scalar(kv.first, "sticky");
  if (kind != "cookie" && kind != "header")
    Reader::Fail(kv.first, "sticky: expected cookie or header");
  route.sticky = kind == "cookie" ? Sticky::kCookie : Sticky::kHeader;
  route.sticky_name = r.Scalar(kv.second, "sticky." + kind, 128);
  if (!ValidToken(route.sticky_name)) Reader::Fail(kv.second, "sticky: not a valid name");
}

void ParseLimits(Reader& r, const YAML::Node& node, Route& route) {
  if (node["priority"])
    route.priority = static_cast<int>(r.Integer(node["priority"], "priority", -1000000, 1000000));
  if (node["max_body"]) {
    long long bytes = 0;
    std::string text = r.Scalar(node["max_body"], "max_body", 32);
    if (!ParseBytes(text, bytes) || bytes < 1)
      Reader::Fail(node["max_body"], "max_body: expected a size like 10MiB");
    route.max_body = static_cast<std::uint64_t>(bytes);
  }
  if (node["health_path"]) {
    route.health_path = r.Scalar(node["health_path"], "health_path");
    if (!ValidPath(route.health_path))
      Reader::Fail(node["health_path"], "health_path: expected a path like /health");
  }
}

Route ParseRoute(Reader& r, const YAML::Node& node) {
  r.Visit(node);
  static const std::set<std::string> kKeys = {"name",     "app",      "hosts",       "path",
                                              "listener", "priority", "when",        "max_body",
                                              "to",       "sides",    "health_path", "sticky"};
  if (!node.IsMap()) Reader::Fail(node, "routes: each route is a mapping");
  for (const auto& kv : node)
    if (!kKeys.contains(r.Scalar(kv.first, "route")))
      Reader::Fail(kv.first, "unknown key '" + kv.first.Scalar() + "'");
  if (!node["name"]) Reader::Fail(node, "route: name is required");
  Route route;
  route.name = CheckedName(r, node["name"], "name");
  route.app = node["app"] ? CheckedName(r, node["app"], "app") : route.name;
  if (!node["hosts"]) Reader::Fail(node, "route '" + route.name + "': hosts is required");
  route.hosts = r.List(node["hosts"], "hosts", 256);
  for (auto& h : route.hosts)
    if (!ValidHost(h)) Reader::Fail(node["hosts"], "hosts: '" + h + "' is not a host name");
  if (node["path"]) {
    route.path_prefix = r.Scalar(node["path"], "path");
    if (!ValidPath(route.path_prefix)) Reader::Fail(node["path"], "path: expected /prefix");
    if (route.path_prefix == "/") route.path_prefix.clear();
  }
  if (node["listener"]) route.listener = CheckedName(r, node["listener"], "listener");
  if (node["when"]) ParseWhen(r, node["when"], route);
  ParseLimits(r, node, route);
  if (node["to"] && node["sides"]) Reader::Fail(node, "route: give either to or sides");
  if (node["to"]) {
    auto targets = Targets(r, node["to"]);
    if (targets.size() == 1)
      route.target = targets.front();
    else
      route.pool = std::move(targets);
  } else if (node["sides"]) {
    ParseSides(r, node["sides"], route);
  } else {
    Reader::Fail(node, "route '" + route.name + "': to or sides is required");
  }
  if (node["sticky"]) {
    if (route.sides.empty()) Reader::Fail(node["sticky"], "sticky: needs sides");
    ParseSticky(r, node["sticky"], route);
  }
  return route;
}

RouteFile ParseTree(const YAML::Node& root) {
  Reader r;
  RouteFile out;
  if (!root.IsMap()) Reader::Fail(root, "expected a mapping with routes");
  r.Visit(root);
  for (const auto& kv : root) {
    std::string key = r.Scalar(kv.first, "key");
    if (key != "routes" && key != "listen") Reader::Fail(kv.first, "unknown key '" + key + "'");
  }
  if (root["listen"]) {
    for (const auto& text : r.List(root["listen"], "listen", 64)) {
      ListenOn on;
      if (!ParseListen(text, on))
        Reader::Fail(root["listen"], "listen: expected HOST:PORT[=SET], got '" + text + "'");
      out.listen.push_back(on);
    }
  }
  const YAML::Node routes = root["routes"];
  if (!routes || !routes.IsSequence()) Reader::Fail(root, "routes: expected a list");
  if (routes.size() > kMaxRoutes) Reader::Fail(routes, "routes: more than 100000");
  std::set<std::string> names;
  for (const auto& node : routes) {
    out.routes.push_back(ParseRoute(r, node));
    if (!names.insert(out.routes.back().name).second)
      Reader::Fail(node["name"], "name: '" + out.routes.back().name + "' is used twice");
  }
  return out;
}

std::string Where(const std::string& file, const YAML::Mark& mark) {
  if (mark.line < 0) return file + ":1:1";
  return file + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

}  // namespace

bool ParseListen(const std::string& text, ListenOn& out) {
  std::string addr = text;
  std::string set;
  if (auto eq = text.find('='); eq != std::string::npos) {
    addr = text.substr(0, eq);
    set = text.substr(eq + 1);
    if (!ValidName(set)) return false;
  }
  auto colon = addr.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  std::string host = addr.substr(0, colon);
  if (host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = -1;
  std::string ps = addr.substr(colon + 1);
  auto [p, ec] = std::from_chars(ps.data(), ps.data() + ps.size(), port);
  if (ps.empty() || ec != std::errc() || p != ps.data() + ps.size() || port < 0 || port > 65535)
    return false;
  boost::system::error_code aec;
  boost::asio::ip::make_address(host, aec);
  if (aec) return false;
  out = {host, port, set};
  return true;
}

Result<RouteFile> ParseRouteFile(const std::string& text, const std::string& file) {
  if (text.size() > kMaxText) return Invalid(file + ": larger than 8 MiB");
  try {
    return ParseTree(YAML::Load(text));
  } catch (const FileError& e) {
    return Invalid(Where(file, e.mark) + ": " + e.message);
  } catch (const YAML::Exception& e) {
    return Invalid(Where(file, e.mark) + ": " + e.msg);
  }
}

Result<RouteFile> LoadRouteFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return NotFound(path + ": cannot be read");
  if (static_cast<std::size_t>(in.tellg()) > kMaxText) return Invalid(path + ": larger than 8 MiB");
  in.seekg(0);
  std::ostringstream text;
  text << in.rdbuf();
  return ParseRouteFile(text.str(), path);
}

}  // namespace slipway::gateway
