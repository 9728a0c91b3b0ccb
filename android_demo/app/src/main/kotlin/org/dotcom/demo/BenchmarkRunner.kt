package org.dotcom.demo

import android.content.Context
import org.dotcom.core.ArtifactInfo
import org.dotcom.core.InTurn
import org.dotcom.core.LatencyReport
import org.dotcom.core.Measurements
import org.dotcom.core.ProgramFailed
import org.dotcom.core.Protocol
import kotlin.random.Random

/** Threads, warm-up and timed iterations of one benchmark run. */
data class BenchmarkConfig(val threads: Int = 0, val warmup: Int = 10, val iterations: Int = 50, val cooldownS: Double? = null)

/**
 * Runs the benchmark protocol every runner of the project shares (load, warm-up, timed
 * iterations on a fixed random input, System.nanoTime per forward) and returns latency-report
 * v1s. Failures become error reports rather than exceptions, so the headless run always
 * leaves a file the CLI can read.
 */
class BenchmarkRunner(private val context: Context) {
    /** One model timed alone: [runInTurn] with one program, so both go through one loop. */
    fun run(model: ModelEntry, config: BenchmarkConfig, onProgress: (done: Int, total: Int) -> Unit = { _, _ -> }): LatencyReport =
        runInTurn(listOf(model), config, onProgress).single()

    /**
     * [models] loaded at once and called in turn (core's [InTurn]: A, B, A, B, ...), so a
     * thermal slowdown of the phone lands on all of them and their latency ratio holds; one
     * report per model, in order, each naming the others in `protocol.in_turn_with`. When one
     * fails to load or run, every member gets an error report naming it (as the host runners
     * do): the others' numbers would not have been timed in turn. Peak PSS covers all of them.
     */
    fun runInTurn(
        models: List<ModelEntry>,
        config: BenchmarkConfig,
        onProgress: (done: Int, total: Int) -> Unit = { _, _ -> },
    ): List<LatencyReport> {
        require(models.isNotEmpty()) { "no model to benchmark" }
        val artifacts =
            models.map { model ->
                model.manifest?.let { ArtifactInfo.fromManifest(it, model.pte.absolutePath) }
                    ?: ArtifactInfo.fromFileName(model.pte.name, model.pte.absolutePath)
            }
        val others = InTurn.others(artifacts.map { it.name })
        // Described once, after the run (thermal state and clocks as the run left them).
        val device by lazy { DeviceProbe.describe(context, config.threads) }

        fun report(k: Int, measurements: Measurements?, error: String?) = LatencyReport(
            artifact = artifacts[k],
            device = device,
            protocol = Protocol(config.warmup, config.iterations, input = "random", cooldownS = config.cooldownS, inTurnWith = others[k]),
            measurements = measurements,
            error = error,
            delegation = models[k].manifest?.delegation,
            executorchVersion = BuildConfig.EXECUTORCH_VERSION,
            computeUnit = models[k].manifest?.computeUnit,
        )

        fun failed(k: Int, message: String): List<LatencyReport> {
            val text = if (models.size == 1) message else InTurn.failureMessage(artifacts[k].name, message)
            return models.indices.map { report(it, null, text) }
        }

        var peakPss = DeviceProbe.pssBytes()
        val sessions = ArrayList<ExecuTorchSession>(models.size)
        try {
            for ((k, model) in models.withIndex()) {
                try {
                    sessions.add(ExecuTorchSession.open(model, config.threads))
                } catch (e: ModelException) {
                    return failed(k, e.message ?: "cannot load ${model.pte.name}")
                }
            }
            val programs = sessions.map { session -> randomInput(session.inputShape).let { input -> { session.run(input) } } }
            val timings =
                try {
                    InTurn.time(programs, config.warmup, config.iterations) { done, total ->
                        if (done == 1 || done == total) peakPss = maxOf(peakPss, DeviceProbe.pssBytes())
                        onProgress(done, total)
                    }
                } catch (e: ProgramFailed) {
                    return failed(e.index, e.cause.message ?: "inference failed")
                }
            return timings.mapIndexed { k, t -> report(k, Measurements(t.latenciesMs, sessions[k].loadMs, t.firstMs, peakPss), null) }
        } finally {
            sessions.forEach { it.close() }
        }
    }

    /** A fixed-seed standard-normal-ish input: the same bytes on every run and device. */
    private fun randomInput(shape: LongArray): FloatArray {
        val n = shape.fold(1L) { a, b -> a * b }.toInt()
        val rng = Random(0)
        return FloatArray(n) { (rng.nextFloat() - 0.5f) * 3.4641016f }
    }
}
