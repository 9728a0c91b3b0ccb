#include "stats.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace dotcom {
namespace {

// Compensated (Neumaier) summation: Python's math.fsum is exactly rounded, a
// naive loop can drift in the last digits on long samples.
double accurate_sum(const std::vector<double>& xs) {
  double sum = 0.0, comp = 0.0;
  for (double x : xs) {
    double t = sum + x;
    if (std::fabs(sum) >= std::fabs(x)) {
      comp += (sum - t) + x;
    } else {
      comp += (x - t) + sum;
    }
    sum = t;
  }
  return sum + comp;
}

std::vector<double> sorted_copy(const std::vector<double>& samples) {
  std::vector<double> xs(samples);
  std::sort(xs.begin(), xs.end());
  return xs;
}

double percentile_sorted(const std::vector<double>& xs, double q) {
  const double h = static_cast<double>(xs.size() - 1) * q / 100.0;
  const double lo_f = std::floor(h);
  const size_t lo = static_cast<size_t>(lo_f);
  const size_t hi = std::min(lo + 1, xs.size() - 1);
  return xs[lo] + (h - lo_f) * (xs[hi] - xs[lo]);
}

double trimmed_mean_sorted(const std::vector<double>& xs, double fraction) {
  const size_t k = static_cast<size_t>(std::floor(fraction * static_cast<double>(xs.size())));
  std::vector<double> kept(xs.begin() + k, xs.end() - k);
  return accurate_sum(kept) / static_cast<double>(kept.size());
}

}  // namespace

double percentile(const std::vector<double>& samples, double q) {
  if (samples.empty()) throw std::invalid_argument("percentile of an empty sample");
  if (!(q >= 0.0 && q <= 100.0)) throw std::invalid_argument("percentile must be in [0, 100]");
  return percentile_sorted(sorted_copy(samples), q);
}

double trimmed_mean(const std::vector<double>& samples, double fraction) {
  if (samples.empty()) throw std::invalid_argument("trimmed mean of an empty sample");
  return trimmed_mean_sorted(sorted_copy(samples), fraction);
}

LatencyStats summarize(const std::vector<double>& samples) {
  if (samples.empty()) throw std::invalid_argument("no latency samples to summarize");
  const std::vector<double> xs = sorted_copy(samples);
  const double n = static_cast<double>(xs.size());
  const double mean = accurate_sum(samples) / n;
  std::vector<double> sq;
  sq.reserve(samples.size());
  for (double x : samples) sq.push_back((x - mean) * (x - mean));
  LatencyStats s;
  s.p50_ms = percentile_sorted(xs, 50);
  s.p90_ms = percentile_sorted(xs, 90);
  s.p99_ms = percentile_sorted(xs, 99);
  s.mean_ms = mean;
  s.trimmed_mean_ms = trimmed_mean_sorted(xs, 0.1);
  s.min_ms = xs.front();
  s.max_ms = xs.back();
  s.stddev_ms = std::sqrt(accurate_sum(sq) / n);
  return s;
}

}  // namespace dotcom
