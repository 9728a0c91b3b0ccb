package org.dotcom.core

import kotlin.math.floor
import kotlin.math.sqrt

/** The `results` statistics of a latency report, named as in latency-report v1. */
data class LatencyStats(
    val p50Ms: Double,
    val p90Ms: Double,
    val p99Ms: Double,
    val meanMs: Double,
    val trimmedMeanMs: Double,
    val minMs: Double,
    val maxMs: Double,
    val stddevMs: Double,
) {
    /** Keys exactly as the report schema spells them. */
    fun toMap(): Map<String, Double> = linkedMapOf(
        "p50_ms" to p50Ms,
        "p90_ms" to p90Ms,
        "p99_ms" to p99Ms,
        "mean_ms" to meanMs,
        "trimmed_mean_ms" to trimmedMeanMs,
        "min_ms" to minMs,
        "max_ms" to maxMs,
        "stddev_ms" to stddevMs,
    )
}

/**
 * Latency statistics with the one definition every runner shares (report/stats.py).
 *
 * Host, Android and iOS numbers land in one table, so the definitions must agree to the last
 * digit; report/schemas/stats_vectors.json pins them and the unit tests reproduce it.
 * Percentile: type 7 (numpy's default); trimmed mean: drop floor(0.1 n) from each end;
 * stddev: population (ddof = 0). Sums are exact (as Python's math.fsum) so long runs of
 * similar samples do not drift.
 */
object Stats {
    const val TRIM_FRACTION = 0.1

    /** Type-7 percentile of [samples] for [q] in [0, 100]. */
    fun percentile(samples: List<Double>, q: Double): Double {
        require(samples.isNotEmpty()) { "percentile of an empty sample" }
        require(q in 0.0..100.0) { "percentile must be in [0, 100], got $q" }
        val xs = samples.sorted()
        val h = (xs.size - 1) * q / 100.0
        val lo = floor(h).toInt()
        val hi = minOf(lo + 1, xs.size - 1)
        return xs[lo] + (h - lo) * (xs[hi] - xs[lo])
    }

    /** Mean after dropping floor([fraction] * n) samples from each end of the sorted samples. */
    fun trimmedMean(samples: List<Double>, fraction: Double = TRIM_FRACTION): Double {
        require(samples.isNotEmpty()) { "trimmed mean of an empty sample" }
        val xs = samples.sorted()
        val k = floor(fraction * xs.size).toInt()
        val kept = xs.subList(k, xs.size - k)
        return fsum(kept) / kept.size
    }

    /** Every statistic of the report's `results` object. */
    fun summarize(samples: List<Double>): LatencyStats {
        require(samples.isNotEmpty()) { "no latency samples to summarize" }
        val n = samples.size
        val mean = fsum(samples) / n
        val variance = fsum(samples.map { (it - mean) * (it - mean) }) / n
        return LatencyStats(
            p50Ms = percentile(samples, 50.0),
            p90Ms = percentile(samples, 90.0),
            p99Ms = percentile(samples, 99.0),
            meanMs = mean,
            trimmedMeanMs = trimmedMean(samples),
            minMs = samples.min(),
            maxMs = samples.max(),
            stddevMs = sqrt(variance),
        )
    }

    /**
     * Exactly rounded sum (Shewchuk's partials, the algorithm behind Python's math.fsum), so
     * the mean equals Python's bit for bit in all but pathological half-way cases.
     */
    fun fsum(values: Iterable<Double>): Double {
        val partials = ArrayList<Double>()
        for (v in values) {
            var x = v
            var j = 0
            for (p in partials.toList()) {
                var y = p
                if (kotlin.math.abs(x) < kotlin.math.abs(y)) {
                    val t = x
                    x = y
                    y = t
                }
                val hi = x + y
                val lo = y - (hi - x)
                if (lo != 0.0) partials[j++] = lo
                x = hi
            }
            while (partials.size > j) partials.removeAt(partials.size - 1)
            partials.add(x)
        }
        if (partials.isEmpty()) return 0.0
        // Sum from the top, then correct a half-way rounding as CPython does.
        var n = partials.size - 1
        var hi = partials[n]
        var lo = 0.0
        while (n > 0) {
            val x = hi
            val y = partials[--n]
            hi = x + y
            val yr = hi - x
            lo = y - yr
            if (lo != 0.0) break
        }
        if (n > 0 && ((lo < 0.0 && partials[n - 1] < 0.0) || (lo > 0.0 && partials[n - 1] > 0.0))) {
            val y = lo * 2.0
            val x = hi + y
            if (y == x - hi) hi = x
        }
        return hi
    }
}
