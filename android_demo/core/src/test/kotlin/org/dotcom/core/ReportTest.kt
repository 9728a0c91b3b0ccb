package org.dotcom.core

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.io.File
import java.nio.file.Files

class ReportTest {
    private val manifest = Manifest.parse(TestManifests.json())
    private val device = DeviceInfo(os = "Android 15 (API 35)", model = "Pixel 8", cores = 9, threads = 4, thermalState = "NONE")

    private fun report(latencies: List<Double>? = listOf(3.0, 1.0, 2.0), error: String? = null) = LatencyReport(
        artifact = ArtifactInfo.fromManifest(manifest, "/data/local/tmp/dotcom/dotcom_tiny_xnnpack_q8.pte"),
        device = device,
        protocol = Protocol(warmup = 2, iterations = latencies?.size ?: 1),
        measurements = latencies?.let { Measurements(it, loadMs = 12.5, firstInferenceMs = 4.0, peakMemoryBytes = 50_000_000) },
        error = error,
        delegation = manifest.delegation,
        executorchVersion = "1.5.1",
    )

    @Test
    fun writesAReportWithSchemaKeysAndStatistics() {
        val dir = Files.createTempDirectory("report").toFile()
        val file = File(dir, "benchmark_results.json")
        LatencyReport.writeAtomically(file, report().toJson())
        val back = Json.parse(file.readText()) as Map<*, *>
        assertEquals("latency-report", back["schema"])
        assertEquals(1L, back["schema_version"])
        assertEquals("ok", back["status"])
        val results = back["results"] as Map<*, *>
        assertEquals(listOf(3.0, 1.0, 2.0), results["latencies_ms"])
        assertEquals(2.0, results["p50_ms"])
        assertEquals(2.8, results["p90_ms"] as Double, 1e-12)
        assertEquals(50_000_000L, results["peak_memory_bytes"])
        assertEquals("android", (back["runtime"] as Map<*, *>)["runner"])
        assertEquals(listOf(1L, 3L, 64L, 64L), (back["artifact"] as Map<*, *>)["input_shape"])
        assertEquals(0.98, (back["delegation"] as Map<*, *>)["fraction"])
        assertTrue((back["created_at"] as String).endsWith("Z"))
        assertFalse(File(dir, ".benchmark_results.json.tmp").exists())
    }

    @Test
    fun errorReportHasNoResults() {
        val back = Json.parse(report(latencies = null, error = "model missing").toJson()) as Map<*, *>
        assertEquals("error", back["status"])
        assertEquals("model missing", back["error"])
        assertNull(back["results"])
        assertThrows(IllegalArgumentException::class.java) { report(latencies = null, error = null) }
        assertThrows(IllegalArgumentException::class.java) { report(latencies = listOf(-1.0)) }
    }

    @Test
    fun minibenchArrayCarriesTheirMetricNames() {
        val metrics = report(latencies = List(10) { (it + 1).toDouble() }).toMinibench()
        val byName = metrics.associate { it["metric"] to it["actualValue"] }
        assertEquals(5.5, byName["avg_inference_latency(ms)"])
        assertEquals(5.5, byName["trimmean_inference_latency(ms)"])
        assertEquals(12.5, byName["model_load_time(ms)"])
        assertEquals(0.0, byName["load_status"])
        val model = metrics[0]["benchmarkModel"] as Map<*, *>
        assertEquals(mapOf("name" to "dotcom_tiny", "backend" to "xnnpack", "quantization" to "q8"), model)
    }

    @Test
    fun artifactFromFileNameFollowsTheNamingConvention() {
        val a = ArtifactInfo.fromFileName("dotcom_tiny_xnnpack_q8.pte")
        assertEquals(Triple("dotcom_tiny", "xnnpack", "q8"), Triple(a.model, a.backend, a.quantization))
        assertEquals("unknown", ArtifactInfo.fromFileName("model.pte").backend)
    }
}
