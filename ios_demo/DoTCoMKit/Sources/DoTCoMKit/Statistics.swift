import Foundation

/// Latency statistics with the one definition every dotcom-mobile runner shares.
///
/// The Python, C++, Kotlin and Swift runners must agree to the last digit so that
/// numbers from a laptop, a Pixel and an iPhone land in one table. The definitions are
/// those of `report/stats.py`, pinned by `report/schemas/stats_vectors.json`:
///
/// * percentile `q`: linear interpolation between closest ranks (numpy's default,
///   Hyndman & Fan type 7) on the sorted samples;
/// * trimmed mean: drop `floor(0.1 * n)` samples from each end, mean of the rest;
/// * stddev: population standard deviation (ddof = 0).
public enum Statistics {
    /// Fraction dropped from each end by ``trimmedMean(_:fraction:)``.
    public static let trimFraction = 0.1

    public enum StatisticsError: Error, Equatable, CustomStringConvertible {
        case empty
        case percentileOutOfRange(Double)

        public var description: String {
            switch self {
            case .empty: return "no latency samples"
            case .percentileOutOfRange(let q): return "percentile must be in [0, 100], got \(q)"
            }
        }
    }

    /// Type-7 percentile of `samples` for `q` in [0, 100].
    public static func percentile(_ samples: [Double], _ q: Double) throws -> Double {
        guard !samples.isEmpty else { throw StatisticsError.empty }
        guard q >= 0, q <= 100 else { throw StatisticsError.percentileOutOfRange(q) }
        return percentile(sorted: samples.sorted(), q)
    }

    static func percentile(sorted xs: [Double], _ q: Double) -> Double {
        let h = Double(xs.count - 1) * q / 100.0
        let lo = Int(h.rounded(.down))
        let hi = min(lo + 1, xs.count - 1)
        return xs[lo] + (h - Double(lo)) * (xs[hi] - xs[lo])
    }

    /// Mean after dropping `floor(fraction * n)` samples from each end of the sorted samples.
    public static func trimmedMean(_ samples: [Double], fraction: Double = trimFraction) throws -> Double {
        guard !samples.isEmpty else { throw StatisticsError.empty }
        let xs = samples.sorted()
        let k = Int((fraction * Double(xs.count)).rounded(.down))
        let kept = xs[k..<(xs.count - k)]
        return accurateSum(kept) / Double(kept.count)
    }

    /// The `results` statistics of a latency report (keys as in the schema, without `_ms`).
    public static func summarize(_ samples: [Double]) throws -> LatencySummary {
        guard !samples.isEmpty else { throw StatisticsError.empty }
        let xs = samples.sorted()
        let n = Double(xs.count)
        let mean = accurateSum(xs) / n
        let variance = accurateSum(xs.map { ($0 - mean) * ($0 - mean) }) / n
        return LatencySummary(
            p50: percentile(sorted: xs, 50),
            p90: percentile(sorted: xs, 90),
            p99: percentile(sorted: xs, 99),
            mean: mean,
            trimmedMean: try trimmedMean(xs),
            min: xs[0],
            max: xs[xs.count - 1],
            stddev: variance.squareRoot()
        )
    }

    /// Neumaier-compensated sum. Python's `math.fsum` is exact; plain left-to-right
    /// addition drifts by a few ulps over long runs, which is enough to break the
    /// last-digit agreement the test vectors ask for.
    static func accurateSum<C: Collection>(_ values: C) -> Double where C.Element == Double {
        var sum = 0.0
        var compensation = 0.0
        for x in values {
            let t = sum + x
            if abs(sum) >= abs(x) {
                compensation += (sum - t) + x
            } else {
                compensation += (x - t) + sum
            }
            sum = t
        }
        return sum + compensation
    }
}

/// Summary statistics of per-iteration latencies, in milliseconds.
public struct LatencySummary: Equatable, Sendable {
    public var p50: Double
    public var p90: Double
    public var p99: Double
    public var mean: Double
    public var trimmedMean: Double
    public var min: Double
    public var max: Double
    public var stddev: Double

    public init(p50: Double, p90: Double, p99: Double, mean: Double, trimmedMean: Double,
                min: Double, max: Double, stddev: Double) {
        self.p50 = p50
        self.p90 = p90
        self.p99 = p99
        self.mean = mean
        self.trimmedMean = trimmedMean
        self.min = min
        self.max = max
        self.stddev = stddev
    }

    /// Values keyed as in the report schema (`p50_ms`, ...), the form of the test vectors.
    public var bySchemaKey: [String: Double] {
        ["p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "mean_ms": mean,
         "trimmed_mean_ms": trimmedMean, "min_ms": min, "max_ms": max, "stddev_ms": stddev]
    }
}
