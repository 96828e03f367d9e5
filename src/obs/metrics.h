#pragma once
// A small metrics registry with Prometheus text exposition. Counters and histograms are
// keyed by name + label set. Thread-safe: a mutex guards the maps; hot paths (the gateway)
// keep their own atomics and publish through a collector callback instead.
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace slipway::obs {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Metrics {
 public:
  // Process-wide registry.
  static Metrics& Global();

  void Describe(const std::string& name, const std::string& type, const std::string& help);
  void Inc(const std::string& name, const Labels& labels, double by = 1);
  void Set(const std::string& name, const Labels& labels, double value);
  // Records into a histogram with the default latency buckets (seconds).
  void Observe(const std::string& name, const Labels& labels, double seconds);
  // A callback that appends text exposition lines at scrape time (for gauges kept elsewhere).
  void AddCollector(std::function<void(std::string&)> collector);

  // Prometheus text format 0.0.4.
  std::string Render() const;

  static std::string FormatLabels(const Labels& labels);

 private:
  struct Histogram {
    std::vector<double> counts;  // per bucket, non-cumulative
    double sum = 0;
    double count = 0;
  };
  mutable std::mutex mu_;
  std::map<std::string, std::pair<std::string, std::string>> meta_;  // name → (type, help)
  std::map<std::string, std::map<std::string, double>> values_;      // name → labels → value
  std::map<std::string, std::map<std::string, Histogram>> histograms_;
  std::vector<std::function<void(std::string&)>> collectors_;
};

extern const std::vector<double> kLatencyBuckets;

}  // namespace slipway::obs
