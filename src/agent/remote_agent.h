#pragma once
// An Agent whose every call is an op on one node, through the NodeHub. Paths are sent
// relative to the control plane's data directory (agent/wire.h); output events go to the
// call's LineSink. Calls block their thread (see NodeHub::Call); the boolean and numeric
// calls (IsRunning, MemoryBytes, TaskHealthy) answer false/0 when the node cannot be asked.
#include <memory>
#include <string>

#include "agent/agent.h"

namespace slipway {

class NodeHub;
std::unique_ptr<Agent> MakeRemoteAgent(NodeHub& hub, std::string node);

}  // namespace slipway
