package org.dotcom.demo

import androidx.compose.foundation.clickable
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.PaddingValues
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.items
import androidx.compose.material3.Card
import androidx.compose.material3.CardDefaults
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.ui.Modifier
import androidx.compose.ui.unit.dp

/** Every model the app found, with its manifest summary or the reason it cannot run. */
@Composable
fun ModelListScreen(
    models: List<ModelEntry>,
    selected: ModelEntry?,
    onSelect: (ModelEntry) -> Unit,
    onRefresh: () -> Unit,
    modifier: Modifier = Modifier,
) {
    LazyColumn(
        modifier = modifier,
        contentPadding = PaddingValues(16.dp),
        verticalArrangement = Arrangement.spacedBy(8.dp),
    ) {
        item {
            val backends = ExecuTorchSession.registeredBackends()
            Text(
                "ExecuTorch ${BuildConfig.EXECUTORCH_VERSION} (${BuildConfig.EXECUTORCH_FLAVOR}); " +
                    "backends: ${backends.joinToString().ifEmpty { "none found" }}",
                style = MaterialTheme.typography.bodySmall,
            )
            Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
                OutlinedButton(onClick = onRefresh) { Text("Refresh") }
            }
            if (models.isEmpty()) {
                Text(
                    "No models yet. Push one with\n  dotcom-mobile android push model.pte\n" +
                        "(it goes to ${ModelStore.DEVICE_DIR} with its manifest).",
                    modifier = Modifier.padding(top = 16.dp),
                )
            }
        }
        items(models, key = { it.pte.path }) { model ->
            ModelCard(model, isSelected = model == selected, onClick = { if (model.problem == null) onSelect(model) })
        }
    }
}

@Composable
private fun ModelCard(model: ModelEntry, isSelected: Boolean, onClick: () -> Unit) {
    val colors =
        if (isSelected) {
            CardDefaults.cardColors(containerColor = MaterialTheme.colorScheme.primaryContainer)
        } else {
            CardDefaults.cardColors()
        }
    Card(colors = colors, modifier = Modifier.fillMaxWidth().clickable(onClick = onClick)) {
        Column(Modifier.padding(12.dp)) {
            Text(model.title, style = MaterialTheme.typography.titleMedium)
            Text("${model.pte.name} · ${model.source.label} · ${model.pte.length() / 1024} KiB", style = MaterialTheme.typography.bodySmall)
            model.manifest?.let { m ->
                val d = m.delegation
                val delegated = if (d == null) "" else " · delegated ${"%.1f".format(d.fraction * 100)}% in ${d.partitions} partition(s)"
                Text(
                    "input ${m.input.shape.joinToString("x")} · ${m.numClasses} classes$delegated",
                    style = MaterialTheme.typography.bodySmall,
                )
            }
            model.problem?.let {
                Text(it, color = MaterialTheme.colorScheme.error, style = MaterialTheme.typography.bodySmall)
            }
        }
    }
}
