#pragma once
// A request tap: every request the proxy finishes, as one entry, for `slipway sandbox check`
// (which hop of a sandbox's call chain dropped the routing header). Set on the Router; the
// proxy pays one relaxed atomic load per request while no tap is set.
#include <string>
#include <string_view>
#include <vector>

#include "gateway/http1.h"

namespace slipway::gateway {

struct TapEntry {
  std::string listener;  // the listener's route set ("" = the main port)
  std::string route;     // the matched route's label; "" when none matched
  std::string target;    // the target that answered; "" for the gateway's own pages
  // X-Slipway-Sandbox, else the `slipway-sandbox` member of the W3C baggage header
  // (percent-decoded); "" when absent.
  std::string sandbox;
  std::string trace;  // the X-Slipway-Trace header; "" when absent
  int status = 0;     // as sent to the client (499: the client went away mid-request)
  double seconds = 0;
  long long ts_ms = 0;  // wall clock when the request finished, ms since the Unix epoch
};

class RequestTap {
 public:
  virtual ~RequestTap() = default;
  // Called by gateway threads, several at once, after each finished request and outside any
  // lock of the proxy. Must be thread-safe and quick (it runs on the request's event loop),
  // and should not throw (an exception closes that client's connection).
  virtual void Record(const TapEntry& entry) = 0;
};

// The sandbox a request is routed for: the X-Slipway-Sandbox header when present, else the
// `slipway-sandbox` baggage member (percent-decoded; properties after ';' ignored); "" when
// neither is there.
std::string SandboxOf(const std::vector<http1::HeaderField>& headers);

}  // namespace slipway::gateway
