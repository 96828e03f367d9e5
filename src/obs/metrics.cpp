#include "obs/metrics.h"

#include <fmt/format.h>

namespace slipway::obs {

const std::vector<double> kLatencyBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                             0.1,    0.25,  0.5,    1,     2.5,  5,     10,
                                             30,     60,    120,    300,   600};

Metrics& Metrics::Global() {
  static Metrics metrics;
  return metrics;
}

namespace {
std::string Escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}
}  // namespace

std::string Metrics::FormatLabels(const Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ',';
    out += labels[i].first + "=\"" + Escape(labels[i].second) + "\"";
  }
  return out + "}";
}

void Metrics::Describe(const std::string& name, const std::string& type, const std::string& help) {
  std::lock_guard lock(mu_);
  meta_[name] = {type, help};
}

void Metrics::Inc(const std::string& name, const Labels& labels, double by) {
  std::lock_guard lock(mu_);
  values_[name][FormatLabels(labels)] += by;
}

void Metrics::Set(const std::string& name, const Labels& labels, double value) {
  std::lock_guard lock(mu_);
  values_[name][FormatLabels(labels)] = value;
}

void Metrics::Observe(const std::string& name, const Labels& labels, double seconds) {
  std::lock_guard lock(mu_);
  Histogram& h = histograms_[name][FormatLabels(labels)];
  if (h.counts.empty()) h.counts.assign(kLatencyBuckets.size(), 0);
  for (std::size_t i = 0; i < kLatencyBuckets.size(); ++i) {
    if (seconds <= kLatencyBuckets[i]) {
      h.counts[i] += 1;
      break;
    }
  }
  h.sum += seconds;
  h.count += 1;
}

void Metrics::AddCollector(std::function<void(std::string&)> collector) {
  std::lock_guard lock(mu_);
  collectors_.push_back(std::move(collector));
}

namespace {
// Adds `le` to an already formatted label set.
std::string WithLe(const std::string& labels, const std::string& le) {
  if (labels.empty()) return "{le=\"" + le + "\"}";
  return labels.substr(0, labels.size() - 1) + ",le=\"" + le + "\"}";
}
}  // namespace

std::string Metrics::Render() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [name, type_help] : meta_) {
    out +=
        fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, type_help.second, name, type_help.first);
    if (auto it = values_.find(name); it != values_.end()) {
      for (const auto& [labels, v] : it->second) out += fmt::format("{}{} {}\n", name, labels, v);
    }
    if (auto it = histograms_.find(name); it != histograms_.end()) {
      for (const auto& [labels, h] : it->second) {
        double cumulative = 0;
        for (std::size_t i = 0; i < kLatencyBuckets.size(); ++i) {
          cumulative += h.counts[i];
          out += fmt::format("{}_bucket{} {}\n", name,
                             WithLe(labels, fmt::format("{}", kLatencyBuckets[i])), cumulative);
        }
        out += fmt::format("{}_bucket{} {}\n", name, WithLe(labels, "+Inf"), h.count);
        out +=
            fmt::format("{}_sum{} {}\n{}_count{} {}\n", name, labels, h.sum, name, labels, h.count);
      }
    }
  }
  for (const auto& c : collectors_) c(out);
  return out;
}

}  // namespace slipway::obs
