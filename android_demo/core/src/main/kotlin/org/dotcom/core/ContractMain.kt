package org.dotcom.core

import java.io.DataInputStream
import java.io.DataOutputStream
import java.io.File
import kotlin.math.roundToLong
import kotlin.system.exitProcess

/**
 * A command line over the core, so the Python tests can hold the Kotlin side to the same
 * contracts as every other runner (the report schema, the manifest, the preprocessing).
 *
 * ```
 * report     --manifest M.json --out R.json [--latencies 1.5,2.0] [--load-ms 12] [--error TEXT]
 * in-turn    --manifests A.json,B.json --call-ms 'a1,a2,...;b1,b2,...' --out R.json [--warmup W] [--fail K]
 * preprocess --manifest M.json --pixels P.bin --width W --height H --out T.bin
 * ```
 * `in-turn` runs [InTurn.time] over one stand-in program per manifest whose calls take, on a
 * scripted clock, the milliseconds of its `--call-ms` group (first call, warm-up calls, timed
 * calls: max(1, W) + iterations values each), and writes what the headless app writes for
 * those programs (`benchmark_results.json`: one report, or an array of them). `--fail K` makes
 * program K (0-based) throw on its last call: every member then gets an error report.
 * `--pixels` holds width*height big-endian int32 0xAARRGGBB values; the output is the CHW
 * float32 tensor, big-endian.
 */
object ContractMain {
    @JvmStatic
    fun main(args: Array<String>) {
        try {
            run(args.toList())
        } catch (e: IllegalArgumentException) {
            System.err.println("error: ${e.message}")
            exitProcess(2)
        }
    }

    private fun options(args: List<String>): Map<String, String> {
        val out = LinkedHashMap<String, String>()
        var i = 0
        while (i < args.size) {
            val key = args[i]
            require(key.startsWith("--") && i + 1 < args.size) { "expected --option value, got '$key'" }
            out[key.removePrefix("--")] = args[i + 1]
            i += 2
        }
        return out
    }

    private fun run(args: List<String>) {
        require(args.isNotEmpty()) { "usage: ContractMain report|preprocess --option value ..." }
        val o = options(args.drop(1))

        fun need(key: String) = o[key] ?: throw IllegalArgumentException("missing --$key")
        val manifest by lazy { Manifest.parse(File(need("manifest")).readText()) }
        when (args[0]) {
            "in-turn" -> inTurn(o, ::need)

            "report" -> {
                val latencies = o["latencies"]?.split(',')?.map { it.trim().toDouble() }
                val report =
                    LatencyReport(
                        artifact = ArtifactInfo.fromManifest(manifest, o["artifact-path"]),
                        device = DeviceInfo(
                            os = "contract-test",
                            model = "host",
                            cores = Runtime.getRuntime().availableProcessors(),
                            threads = 0,
                        ),
                        protocol = Protocol(warmup = 0, iterations = latencies?.size ?: 1, input = "zeros"),
                        measurements = latencies?.let { Measurements(it, loadMs = o["load-ms"]?.toDouble()) },
                        error = o["error"],
                        delegation = manifest.delegation,
                        executorchVersion = manifest.versions["executorch"],
                        computeUnit = manifest.computeUnit,
                    )
                LatencyReport.writeAtomically(File(need("out")), report.toJson())
            }

            "preprocess" -> {
                val w = need("width").toInt()
                val h = need("height").toInt()
                val pixels = IntArray(w * h)
                DataInputStream(File(need("pixels")).inputStream().buffered()).use { input ->
                    for (i in pixels.indices) pixels[i] = input.readInt()
                }
                val tensor = Preprocess.toTensor(ArgbImage(w, h, pixels), manifest.preprocessing)
                DataOutputStream(File(need("out")).outputStream().buffered()).use { out ->
                    for (v in tensor) out.writeFloat(v)
                }
            }

            else -> throw IllegalArgumentException("unknown command '${args[0]}'")
        }
    }

    /** The `in-turn` command: [InTurn] on scripted programs, reports as the app builds them. */
    private fun inTurn(o: Map<String, String>, need: (String) -> String) {
        val manifests = need("manifests").split(',').map { Manifest.parse(File(it.trim()).readText()) }
        val callMs = need("call-ms").split(';').map { group -> group.split(',').map { it.trim().toDouble() } }
        require(callMs.size == manifests.size) { "--call-ms has ${callMs.size} groups for ${manifests.size} manifests" }
        val warmup = o["warmup"]?.toInt() ?: 0
        val iterations = callMs[0].size - maxOf(warmup, 1)
        require(iterations >= 1 && callMs.all { it.size == callMs[0].size }) {
            "every --call-ms group needs max(1, warm-up) + iterations (>= 1) values"
        }
        val fail = o["fail"]?.toInt()
        var now = 0L
        val programs =
            callMs.mapIndexed { k, durations ->
                var calls = 0
                val program: () -> Unit = {
                    val ms = durations[calls++]
                    if (k == fail && calls == durations.size) throw IllegalStateException("forward failed on call $calls")
                    now += (ms * 1e6).roundToLong()
                }
                program
            }
        val artifacts = manifests.map { ArtifactInfo.fromManifest(it, null) }
        val others = InTurn.others(artifacts.map { it.name })

        fun report(k: Int, measurements: Measurements?, error: String?) = LatencyReport(
            artifact = artifacts[k],
            device = DeviceInfo(os = "contract-test", model = "host", cores = Runtime.getRuntime().availableProcessors(), threads = 0),
            protocol = Protocol(warmup = warmup, iterations = iterations, input = "zeros", inTurnWith = others[k]),
            measurements = measurements,
            error = error,
            delegation = manifests[k].delegation,
            executorchVersion = manifests[k].versions["executorch"],
            computeUnit = manifests[k].computeUnit,
        )
        val reports =
            try {
                InTurn.time(programs, warmup, iterations, clock = { now }).mapIndexed { k, t ->
                    report(k, Measurements(t.latenciesMs, loadMs = 1.0, firstInferenceMs = t.firstMs), null)
                }
            } catch (e: ProgramFailed) {
                val message = InTurn.failureMessage(artifacts[e.index].name, e.cause.message ?: "inference failed")
                artifacts.indices.map { report(it, null, message) }
            }
        LatencyReport.writeAtomically(File(need("out")), LatencyReport.resultsJson(reports))
    }
}
