package org.dotcom.demo

import android.content.Context
import android.content.Intent
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.layout.width
import androidx.compose.foundation.rememberScrollState
import androidx.compose.foundation.text.KeyboardOptions
import androidx.compose.foundation.verticalScroll
import androidx.compose.material3.Button
import androidx.compose.material3.LinearProgressIndicator
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableFloatStateOf
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.rememberCoroutineScope
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.platform.LocalContext
import androidx.compose.ui.text.input.KeyboardType
import androidx.compose.ui.unit.dp
import androidx.core.content.FileProvider
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import org.dotcom.core.LatencyReport
import java.io.File

/** Threads, warm-up and iterations in; p50/p90/mean, load time, PSS, thermal status and CPU clocks out. */
@Composable
fun BenchmarkScreen(model: ModelEntry?, onBeforeRun: () -> Unit, modifier: Modifier = Modifier) {
    val context = LocalContext.current
    val scope = rememberCoroutineScope()
    var threads by remember { mutableStateOf("0") }
    var warmup by remember { mutableStateOf("10") }
    var iterations by remember { mutableStateOf("50") }
    var progress by remember { mutableFloatStateOf(0f) }
    var running by remember { mutableStateOf(false) }
    var report by remember { mutableStateOf<LatencyReport?>(null) }
    var inputError by remember { mutableStateOf<String?>(null) }

    Column(
        modifier.padding(16.dp).verticalScroll(rememberScrollState()),
        verticalArrangement = Arrangement.spacedBy(12.dp),
    ) {
        if (model == null) {
            Text("Select a model on the Models tab first.")
            return@Column
        }
        Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
            NumberField("Threads", threads, { threads = it }, Modifier.width(96.dp))
            NumberField("Warm-up", warmup, { warmup = it }, Modifier.width(96.dp))
            NumberField("Iterations", iterations, { iterations = it }, Modifier.width(112.dp))
        }
        Button(
            enabled = !running,
            onClick = {
                val config = parseConfig(threads, warmup, iterations)
                if (config == null) {
                    inputError = "threads and warm-up must be >= 0, iterations >= 1"
                    return@Button
                }
                inputError = null
                running = true
                report = null
                onBeforeRun()
                scope.launch {
                    report =
                        withContext(Dispatchers.Default) {
                            BenchmarkRunner(context.applicationContext).run(model, config) { done, total ->
                                progress = done.toFloat() / total
                            }
                        }
                    running = false
                }
            },
        ) { Text(if (running) "Running…" else "Run benchmark") }
        inputError?.let { Text(it, color = MaterialTheme.colorScheme.error) }
        if (running) LinearProgressIndicator(progress = { progress }, modifier = Modifier.fillMaxWidth())
        report?.let { ReportCard(it, onShare = { share(context, it) }) }
    }
}

@Composable
private fun NumberField(label: String, value: String, onChange: (String) -> Unit, modifier: Modifier) {
    OutlinedTextField(
        value = value,
        onValueChange = { v -> onChange(v.filter { it.isDigit() }.take(5)) },
        label = { Text(label) },
        singleLine = true,
        keyboardOptions = KeyboardOptions(keyboardType = KeyboardType.Number),
        modifier = modifier,
    )
}

private fun parseConfig(threads: String, warmup: String, iterations: String): BenchmarkConfig? {
    val t = threads.toIntOrNull() ?: return null
    val w = warmup.toIntOrNull() ?: return null
    val n = iterations.toIntOrNull() ?: return null
    return if (t >= 0 && w >= 0 && n >= 1) BenchmarkConfig(t, w, n) else null
}

@Composable
private fun ReportCard(report: LatencyReport, onShare: () -> Unit) {
    val map = report.toMap()
    Column(verticalArrangement = Arrangement.spacedBy(4.dp)) {
        report.error?.let {
            Text(it, color = MaterialTheme.colorScheme.error)
        }
        @Suppress("UNCHECKED_CAST")
        val results = map["results"] as Map<String, Any?>?
        if (results != null) {
            fun ms(key: String) = (results[key] as? Double)?.let { "%.2f ms".format(it) } ?: "n/a"
            Text("p50 ${ms("p50_ms")} · p90 ${ms("p90_ms")} · mean ${ms("mean_ms")}", style = MaterialTheme.typography.titleMedium)
            Text("trimmed mean ${ms("trimmed_mean_ms")} · min ${ms("min_ms")} · max ${ms("max_ms")} · stddev ${ms("stddev_ms")}")
            Text("load ${ms("load_ms")} · first inference ${ms("first_inference_ms")}")
            val pss = results["peak_memory_bytes"] as? Long
            Text("memory (PSS) ${pss?.let { "%.1f MiB".format(it / 1048576.0) } ?: "n/a"}")
        }
        val d = report.device
        Text("thermal status ${d.thermalState ?: "n/a"} · governor ${d.governor ?: "n/a"}")
        Text("CPU MHz ${d.cpuFreqKhz?.joinToString { (it / 1000).toString() } ?: "n/a"}")
        Text("${d.model} · ${d.os} · ${d.cpu}", style = MaterialTheme.typography.bodySmall)
        OutlinedButton(onClick = onShare) { Text("Share report (JSON)") }
    }
}

/** Saves the report under files/reports and opens the share sheet with it. */
private fun share(context: Context, report: LatencyReport) {
    val dir = File(context.filesDir, "reports").apply { mkdirs() }
    val stem = report.artifact.name.substringBeforeLast('.')
    val file = File(dir, "${stem}_android_${report.createdAt.epochSecond}.json")
    LatencyReport.writeAtomically(file, report.toJson())
    val uri = FileProvider.getUriForFile(context, "${context.packageName}.reports", file)
    val send =
        Intent(Intent.ACTION_SEND).apply {
            type = "application/json"
            putExtra(Intent.EXTRA_STREAM, uri)
            addFlags(Intent.FLAG_GRANT_READ_URI_PERMISSION)
        }
    context.startActivity(Intent.createChooser(send, "Share latency report"))
}
