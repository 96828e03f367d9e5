#pragma once
// Readers of slipway.yaml's sections that live outside manifest.cpp. Internal to
// src/manifest/; each throws ManifestError (reader.h) on bad input.
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

#include "manifest/manifest.h"

namespace slipway::manifest_detail {

void ReadRollout(const YAML::Node& rollout, Manifest& m);
void ReadNotify(const YAML::Node& notify, Manifest& m);
void ReadSandbox(const YAML::Node& sandbox, Manifest& m);
nlohmann::json SandboxConfigToJson(const SandboxConfigSpec& c);
SandboxConfigSpec SandboxConfigFromJson(const nlohmann::json& j);
// What rollout rules out elsewhere in the file (swarm, top-level nodes).
void CheckRollout(const YAML::Node& root, const Manifest& m);

nlohmann::json RolloutToJson(const std::vector<RolloutStageSpec>& stages);
// Throws nlohmann::json::exception on a malformed record.
std::vector<RolloutStageSpec> RolloutFromJson(const nlohmann::json& j);

}  // namespace slipway::manifest_detail
