package org.dotcom.demo

import android.app.Activity
import android.os.Bundle
import android.util.Log
import org.dotcom.core.ArtifactInfo
import org.dotcom.core.DeviceInfo
import org.dotcom.core.InTurn
import org.dotcom.core.Json
import org.dotcom.core.LatencyReport
import org.dotcom.core.Protocol
import java.io.File
import kotlin.concurrent.thread

/**
 * Headless benchmark for scripts, with the intent extras of ExecuTorch's benchmark app:
 *
 * ```
 * adb shell am start -W -S -n org.dotcom.demo/.BenchmarkActivity \
 *     --es model_dir /data/local/tmp/dotcom --ei num_iter 50 --ei num_warm_up_iter 10 \
 *     [--ei num_threads 4] [--es model_name dotcom_tiny_xnnpack_q8.pte] [--ef cooldown_s 30]
 * ```
 * It benchmarks the model in `model_dir` and writes `files/benchmark_results.json` (a
 * latency-report v1, also on failure, with status "error") and
 * `files/benchmark_results_minibench.json` (the minibench metric array), then finishes.
 *
 * `model_name` may list several models, comma-separated
 * (`dotcom_tiny_xnnpack_fp32.pte,dotcom_tiny_xnnpack_q8.pte`): they are loaded together and
 * timed in turn ([BenchmarkRunner.runInTurn]), so a thermal slowdown lands on all of them and
 * their ratio holds. `benchmark_results.json` is then a JSON array with one report per model, in
 * the order given, each naming the others in `protocol.in_turn_with`; the minibench file holds
 * every model's metrics. A name without a comma is the single-model run, as before.
 *
 * The result file is written last and atomically, so its presence means the run is over.
 */
class BenchmarkActivity : Activity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val resultFile = File(filesDir, RESULT_FILE)
        val minibenchFile = File(filesDir, MINIBENCH_FILE)
        resultFile.delete()
        minibenchFile.delete()

        val extras = intent.extras
        val modelDir = extras?.getString("model_dir") ?: ModelStore.DEVICE_DIR
        val modelName = extras?.getString("model_name")
        val config =
            BenchmarkConfig(
                threads = extras?.getInt("num_threads", 0) ?: 0,
                warmup = extras?.getInt("num_warm_up_iter", 10) ?: 10,
                iterations = extras?.getInt("num_iter", 50) ?: 50,
                cooldownS = extras?.getFloat("cooldown_s", -1f)?.takeIf { it >= 0f }?.toDouble(),
            )

        thread(name = "dotcom-benchmark") {
            val reports = benchmark(File(modelDir), modelName, config)
            try {
                LatencyReport.writeAtomically(minibenchFile, Json.write(reports.flatMap { it.toMinibench() }) + "\n")
                LatencyReport.writeAtomically(resultFile, LatencyReport.resultsJson(reports))
                Log.i(TAG, "wrote ${resultFile.path} (status ${reports.joinToString { it.status }})")
            } catch (e: Exception) {
                Log.e(TAG, "cannot write ${resultFile.path}", e)
            }
            runOnUiThread { finish() }
        }
    }

    /** The reports of one headless run: one model (no comma in [modelName]) or several in turn. */
    private fun benchmark(dir: File, modelName: String?, config: BenchmarkConfig): List<LatencyReport> {
        val list = modelName?.takeIf { ',' in it } // several models, timed in turn
        return try {
            val models =
                if (list != null) {
                    InTurn.parseNames(list).map { ModelStore.pick(dir, it) }
                } else {
                    listOf(ModelStore.pick(dir, modelName))
                }
            Log.i(TAG, "benchmarking ${models.joinToString { it.pte.path }} with $config")
            BenchmarkRunner(applicationContext).runInTurn(models, config)
        } catch (e: Exception) {
            // Bad extras or an empty folder: still leave a report per model that says why.
            val message = e.message ?: e.toString()
            val names = list?.split(',')?.map { it.trim() }?.filter { it.isNotEmpty() }?.distinct().orEmpty()
            if (names.isEmpty()) return listOf(errorReport(modelName ?: dir.path, config, message, null))
            val others = InTurn.others(names)
            names.mapIndexed { k, name -> errorReport(name, config, message, others[k]) }
        }
    }

    private fun errorReport(what: String, config: BenchmarkConfig, message: String, inTurnWith: List<String>?): LatencyReport =
        LatencyReport(
            artifact = ArtifactInfo.fromFileName(File(what).name),
            device = DeviceInfo(os = "Android ${android.os.Build.VERSION.RELEASE}", threads = config.threads),
            protocol = Protocol(maxOf(config.warmup, 0), maxOf(config.iterations, 1), input = "random", inTurnWith = inTurnWith),
            measurements = null,
            error = message,
            executorchVersion = BuildConfig.EXECUTORCH_VERSION,
        )

    companion object {
        const val TAG = "DotcomBenchmark"
        const val RESULT_FILE = "benchmark_results.json"
        const val MINIBENCH_FILE = "benchmark_results_minibench.json"
    }
}
