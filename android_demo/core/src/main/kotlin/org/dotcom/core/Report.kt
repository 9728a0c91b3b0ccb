package org.dotcom.core

import java.io.File
import java.time.Instant
import java.time.temporal.ChronoUnit

/** The report's `artifact` object. */
data class ArtifactInfo(
    val name: String,
    val backend: String,
    val quantization: String,
    val path: String? = null,
    val sha256: String? = null,
    val sizeBytes: Long? = null,
    val model: String? = null,
    val task: String? = null,
    val inputShape: List<Int>? = null,
) {
    fun toMap(): Map<String, Any?> = linkedMapOf(
        "name" to name,
        "path" to path,
        "backend" to backend,
        "quantization" to quantization,
        "sha256" to sha256,
        "size_bytes" to sizeBytes,
        "model" to model,
        "task" to task,
        "input_shape" to inputShape,
        "params" to null,
        "macs" to null,
    )

    companion object {
        /** Everything the manifest knows about the artifact at [path]. */
        fun fromManifest(manifest: Manifest, path: String?): ArtifactInfo = ArtifactInfo(
            name = manifest.artifactFile,
            backend = manifest.backend,
            quantization = manifest.quantization,
            path = path,
            sha256 = manifest.sha256,
            sizeBytes = manifest.sizeBytes,
            model = manifest.model,
            task = manifest.task,
            inputShape = manifest.input.shape,
        )

        /**
         * Best guess from a file name `<model>_<backend>_<quant>.pte` when there is no
         * manifest (the convention ExecuTorch's benchmark apps parse too).
         */
        fun fromFileName(fileName: String, path: String? = null): ArtifactInfo {
            val stem = fileName.substringBeforeLast('.')
            val parts = stem.split('_')
            val quant = parts.last().takeIf { parts.size >= 3 && it in setOf("fp32", "fp16", "q8") }
            val backend = if (quant != null) parts[parts.size - 2] else "unknown"
            val model = if (quant != null) parts.dropLast(2).joinToString("_") else null
            return ArtifactInfo(fileName, backend, quant ?: "unknown", path = path, model = model)
        }
    }
}

/** The report's `device` object, filled by the platform layer. */
data class DeviceInfo(
    val os: String,
    val model: String? = null,
    val cpu: String? = null,
    val cores: Int? = null,
    val threads: Int? = null,
    val governor: String? = null,
    val cpuFreqKhz: List<Int>? = null,
    val thermalState: String? = null,
    val memoryBytes: Long? = null,
    val platform: String = "android",
) {
    fun toMap(): Map<String, Any?> = linkedMapOf(
        "platform" to platform,
        "os" to os,
        "model" to model,
        "cpu" to cpu,
        "cores" to cores,
        "threads" to threads,
        "governor" to governor,
        "cpu_freq_khz" to cpuFreqKhz,
        "thermal_state" to thermalState,
        "memory_bytes" to memoryBytes,
    )
}

/**
 * The report's `protocol` object. [inTurnWith]: the other artifacts timed in turn with this one
 * ([InTurn]), in order; null when it was timed alone, and then `in_turn_with` is left out (the
 * schema allows a non-empty array or no key, not null).
 */
data class Protocol(
    val warmup: Int,
    val iterations: Int,
    val repeats: Int = 1,
    val input: String = "random",
    val cooldownS: Double? = null,
    val clock: String? = "System.nanoTime",
    val inTurnWith: List<String>? = null,
) {
    init {
        require(warmup >= 0) { "warm-up must be >= 0, got $warmup" }
        require(iterations >= 1) { "iterations must be >= 1, got $iterations" }
        require(repeats >= 1) { "repeats must be >= 1, got $repeats" }
        inTurnWith?.let { others ->
            require(others.isNotEmpty()) { "in_turn_with must name at least one artifact (null when timed alone)" }
            require(others.none { it.isBlank() }) { "in_turn_with has a blank artifact name" }
        }
    }

    fun toMap(): Map<String, Any?> {
        val map: MutableMap<String, Any?> =
            linkedMapOf(
                "warmup" to warmup,
                "iterations" to iterations,
                "repeats" to repeats,
                "input" to input,
                "cooldown_s" to cooldownS,
                "clock" to clock,
            )
        inTurnWith?.let { map["in_turn_with"] = it }
        return map
    }
}

/** What a run measured; statistics are derived from [latenciesMs]. */
data class Measurements(
    val latenciesMs: List<Double>,
    val loadMs: Double? = null,
    val firstInferenceMs: Double? = null,
    val peakMemoryBytes: Long? = null,
)

/**
 * One latency-report v1 (report/schemas/latency-report.v1.schema.json), the file every runner
 * of the project writes, so Android numbers land in the same `dotcom-mobile report` table as
 * the host's.
 */
data class LatencyReport(
    val artifact: ArtifactInfo,
    val device: DeviceInfo,
    val protocol: Protocol,
    val measurements: Measurements?,
    val error: String? = null,
    val delegation: Delegation? = null,
    val executorchVersion: String? = null,
    val computeUnit: String? = null,
    val createdAt: Instant = Instant.now(),
    val source: String? = null,
) {
    init {
        require(error != null || measurements != null) { "a report needs measurements or an error" }
        require(error == null || error.isNotBlank()) { "an error report needs a message" }
        measurements?.let { m ->
            require(m.latenciesMs.isNotEmpty()) { "no latency samples" }
            require(m.latenciesMs.all { it >= 0.0 && it.isFinite() }) { "latencies must be finite and >= 0" }
        }
    }

    val status: String get() = if (error == null) "ok" else "error"

    /** The report as plain maps, keys in schema order. */
    fun toMap(): Map<String, Any?> {
        val results =
            measurements?.let { m ->
                val r = LinkedHashMap<String, Any?>()
                r["load_ms"] = m.loadMs
                r["first_inference_ms"] = m.firstInferenceMs
                r["latencies_ms"] = m.latenciesMs
                r.putAll(Stats.summarize(m.latenciesMs).toMap())
                r["peak_memory_bytes"] = m.peakMemoryBytes
                r["outputs_verified"] = null
                r
            }
        return linkedMapOf(
            "schema" to "latency-report",
            "schema_version" to 1,
            "artifact" to artifact.toMap(),
            "device" to device.toMap(),
            "runtime" to
                linkedMapOf(
                    "runner" to "android",
                    "executorch_version" to executorchVersion,
                    "version" to null,
                    "compute_unit" to computeUnit,
                ),
            "protocol" to protocol.toMap(),
            "results" to results,
            "delegation" to delegation?.toMap(),
            "status" to status,
            "error" to error,
            "created_at" to createdAt.truncatedTo(ChronoUnit.SECONDS).toString(),
            "source" to source,
        )
    }

    fun toJson(): String = Json.write(toMap()) + "\n"

    /**
     * The same run as ExecuTorch's minibench `benchmark_results.json` array, for tooling that
     * already reads that format.
     */
    fun toMinibench(): List<Map<String, Any?>> {
        val model = linkedMapOf(
            "name" to (artifact.model ?: artifact.name.substringBeforeLast('.')),
            "backend" to artifact.backend,
            "quantization" to artifact.quantization,
        )
        val device =
            linkedMapOf(
                "device" to (device.model ?: ""),
                "arch" to (device.cpu ?: ""),
                "os" to device.os,
                "totalMem" to (device.memoryBytes ?: 0L),
                "availMem" to 0L,
            )

        fun metric(name: String, value: Double) =
            linkedMapOf("benchmarkModel" to model, "metric" to name, "actualValue" to value, "targetValue" to 0.0, "deviceInfo" to device)
        val out = ArrayList<Map<String, Any?>>()
        val m = measurements
        if (m != null) {
            val minibenchTrim = m.latenciesMs.sorted().let { it.subList(it.size / 10, it.size * 9 / 10).ifEmpty { it } }
            out.add(metric("avg_inference_latency(ms)", Stats.fsum(m.latenciesMs) / m.latenciesMs.size))
            out.add(metric("trimmean_inference_latency(ms)", Stats.fsum(minibenchTrim) / minibenchTrim.size))
        }
        m?.loadMs?.let { out.add(metric("model_load_time(ms)", it)) }
        out.add(metric("load_status", if (error == null) 0.0 else 1.0))
        m?.peakMemoryBytes?.let { out.add(metric("ram_pss_usage(mb)", it / (1024.0 * 1024.0))) }
        return out
    }

    companion object {
        /**
         * The headless run's `benchmark_results.json`: the report itself for one program (the
         * format every earlier reader expects), a JSON array of them for programs timed in turn.
         */
        fun resultsJson(reports: List<LatencyReport>): String {
            require(reports.isNotEmpty()) { "no report to write" }
            return if (reports.size == 1) reports[0].toJson() else Json.write(reports.map { it.toMap() }) + "\n"
        }

        /**
         * Writes [text] to [target] through a temporary file and a rename, so a reader polling
         * for the file (the CLI over adb) never sees half of it.
         */
        fun writeAtomically(target: File, text: String) {
            target.absoluteFile.parentFile?.mkdirs()
            val tmp = File(target.absoluteFile.parentFile, ".${target.name}.tmp")
            tmp.writeText(text)
            if (!tmp.renameTo(target)) {
                tmp.delete()
                throw java.io.IOException("could not move ${tmp.path} to ${target.path}")
            }
        }
    }
}
