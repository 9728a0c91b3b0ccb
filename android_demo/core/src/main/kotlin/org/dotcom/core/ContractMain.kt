package org.dotcom.core

import java.io.DataInputStream
import java.io.DataOutputStream
import java.io.File
import kotlin.system.exitProcess

/**
 * A command line over the core, so the Python tests can hold the Kotlin side to the same
 * contracts as every other runner (the report schema, the manifest, the preprocessing).
 *
 * ```
 * report     --manifest M.json --out R.json [--latencies 1.5,2.0] [--load-ms 12] [--error TEXT]
 * preprocess --manifest M.json --pixels P.bin --width W --height H --out T.bin
 * ```
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
        val manifest = Manifest.parse(File(need("manifest")).readText())
        when (args[0]) {
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
}
