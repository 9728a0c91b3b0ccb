package org.dotcom.demo

import android.content.Context
import org.dotcom.core.ArtifactInfo
import org.dotcom.core.LatencyReport
import org.dotcom.core.Measurements
import org.dotcom.core.Protocol
import kotlin.random.Random

/** Threads, warm-up and timed iterations of one benchmark run. */
data class BenchmarkConfig(val threads: Int = 0, val warmup: Int = 10, val iterations: Int = 50, val cooldownS: Double? = null)

/**
 * Runs the benchmark protocol every runner of the project shares (load, warm-up, timed
 * iterations on a fixed random input, System.nanoTime per forward) and returns a
 * latency-report v1. Failures become an error report rather than an exception, so the
 * headless run always leaves a file the CLI can read.
 */
class BenchmarkRunner(private val context: Context) {
    fun run(model: ModelEntry, config: BenchmarkConfig, onProgress: (done: Int, total: Int) -> Unit = { _, _ -> }): LatencyReport {
        val artifact =
            model.manifest?.let { ArtifactInfo.fromManifest(it, model.pte.absolutePath) }
                ?: ArtifactInfo.fromFileName(model.pte.name, model.pte.absolutePath)
        val protocol = Protocol(config.warmup, config.iterations, input = "random", cooldownS = config.cooldownS)

        fun report(measurements: Measurements?, error: String?) = LatencyReport(
            artifact = artifact,
            device = DeviceProbe.describe(context, config.threads),
            protocol = protocol,
            measurements = measurements,
            error = error,
            delegation = model.manifest?.delegation,
            executorchVersion = BuildConfig.EXECUTORCH_VERSION,
            computeUnit = model.manifest?.computeUnit,
        )

        var peakPss = DeviceProbe.pssBytes()
        val session =
            try {
                ExecuTorchSession.open(model, config.threads)
            } catch (e: ModelException) {
                return report(null, e.message ?: "cannot load ${model.pte.name}")
            }
        session.use {
            try {
                val input = randomInput(session.inputShape)
                val total = config.warmup + config.iterations
                var firstMs: Double? = null
                val latencies = ArrayList<Double>(config.iterations)
                for (i in 0 until total) {
                    val start = System.nanoTime()
                    session.run(input)
                    val ms = (System.nanoTime() - start) / 1e6
                    if (firstMs == null) firstMs = ms
                    if (i >= config.warmup) latencies.add(ms)
                    if (i == 0 || i == total - 1) peakPss = maxOf(peakPss, DeviceProbe.pssBytes())
                    onProgress(i + 1, total)
                }
                return report(Measurements(latencies, session.loadMs, firstMs, peakPss), null)
            } catch (e: ModelException) {
                return report(null, e.message ?: "inference failed")
            }
        }
    }

    /** A fixed-seed standard-normal-ish input: the same bytes on every run and device. */
    private fun randomInput(shape: LongArray): FloatArray {
        val n = shape.fold(1L) { a, b -> a * b }.toInt()
        val rng = Random(0)
        return FloatArray(n) { (rng.nextFloat() - 0.5f) * 3.4641016f }
    }
}
