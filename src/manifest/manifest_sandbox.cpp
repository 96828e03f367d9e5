// slipway.yaml's `sandbox:` section (see SandboxConfigSpec in manifest.h).
#include "manifest/manifest_sections.h"
#include "manifest/reader.h"

namespace slipway::manifest_detail {

namespace {

// A path inside the release directory: relative, no "..", no empty segment.
std::string RelativePath(const YAML::Node& node, const std::string& key) {
  std::string v = Reader::Scalar(node, key, 255);
  if (v.empty() || v.front() == '/') Reader::Fail(node, key + ": expected a relative path");
  std::size_t start = 0;
  while (start <= v.size()) {
    std::size_t end = v.find('/', start);
    if (end == std::string::npos) end = v.size();
    std::string segment = v.substr(start, end - start);
    if (segment.empty() || segment == "..")
      Reader::Fail(node, key + ": a path inside the repository, without '..' or '//'");
    start = end + 1;
  }
  if (v.find('\0') != std::string::npos) Reader::Fail(node, key + ": must not contain NUL");
  return v;
}

}  // namespace

void ReadSandbox(const YAML::Node& sandbox, Manifest& m) {
  Reader::Keys(sandbox, "sandbox", {"config"});
  if (!sandbox["config"]) return;
  const YAML::Node c = sandbox["config"];
  Reader::Keys(c, "sandbox.config", {"template", "path", "reload", "read_back"});
  if (!c["template"] || !c["path"])
    Reader::Fail(c, "sandbox.config: needs template (in the repository) and path (its rendering)");
  SandboxConfigSpec& out = m.sandbox_config;
  out.template_path = RelativePath(c["template"], "sandbox.config.template");
  out.path = RelativePath(c["path"], "sandbox.config.path");
  if (out.path == out.template_path)
    Reader::Fail(c["path"], "sandbox.config.path: must differ from the template");
  if (c["reload"])
    out.reload = Reader::Scalar(c["reload"], "sandbox.config.reload", limits::kCommandBytes);
  if (c["read_back"]) {
    out.read_back = Reader::Scalar(c["read_back"], "sandbox.config.read_back", 1024);
    if (out.read_back.empty() || out.read_back.front() != '/' ||
        out.read_back.find_first_of(" \r\n\t") != std::string::npos)
      Reader::Fail(c["read_back"], "sandbox.config.read_back: expected a path like /_routes");
  }
}

nlohmann::json SandboxConfigToJson(const SandboxConfigSpec& c) {
  return {{"template", c.template_path},
          {"path", c.path},
          {"reload", c.reload},
          {"read_back", c.read_back}};
}

SandboxConfigSpec SandboxConfigFromJson(const nlohmann::json& j) {
  SandboxConfigSpec c;
  c.template_path = j.value("template", "");
  c.path = j.value("path", "");
  c.reload = j.value("reload", "");
  c.read_back = j.value("read_back", "");
  return c;
}

}  // namespace slipway::manifest_detail
