// Latency statistics, defined exactly as report/stats.py so that every runner's
// report agrees to the last digit (checked against report/schemas/stats_vectors.json).
#pragma once

#include <vector>

namespace dotcom {

struct LatencyStats {
  double p50_ms = 0, p90_ms = 0, p99_ms = 0;
  double mean_ms = 0, trimmed_mean_ms = 0;
  double min_ms = 0, max_ms = 0, stddev_ms = 0;
};

// Hyndman & Fan type 7 (numpy's default): h = (n - 1) * q / 100, linear
// interpolation between the sorted samples at floor(h) and floor(h) + 1.
double percentile(const std::vector<double>& samples, double q);

// Mean after dropping floor(fraction * n) sorted samples from each end.
double trimmed_mean(const std::vector<double>& samples, double fraction = 0.1);

// All report statistics; stddev is the population one (ddof = 0).
// Throws std::invalid_argument on an empty sample.
LatencyStats summarize(const std::vector<double>& samples);

}  // namespace dotcom
