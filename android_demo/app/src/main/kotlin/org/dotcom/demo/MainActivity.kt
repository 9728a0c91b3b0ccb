package org.dotcom.demo

import android.os.Bundle
import androidx.activity.ComponentActivity
import androidx.activity.compose.setContent
import androidx.activity.enableEdgeToEdge
import androidx.compose.foundation.layout.padding
import androidx.compose.material3.Icon
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.NavigationBar
import androidx.compose.material3.NavigationBarItem
import androidx.compose.material3.Scaffold
import androidx.compose.material3.Text
import androidx.compose.material3.TopAppBar
import androidx.compose.runtime.Composable
import androidx.compose.runtime.DisposableEffect
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.rememberCoroutineScope
import androidx.compose.runtime.saveable.rememberSaveable
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.platform.LocalContext
import androidx.compose.ui.res.painterResource
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext

/** The demo: Models, Classify and Benchmark tabs over one selected model. */
class MainActivity : ComponentActivity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        enableEdgeToEdge()
        setContent {
            MaterialTheme {
                DemoApp()
            }
        }
    }
}

private enum class Tab(val title: String) {
    MODELS("Models"),
    CLASSIFY("Classify"),
    BENCHMARK("Benchmark"),
}

@Composable
fun DemoApp() {
    val context = LocalContext.current
    var tab by rememberSaveable { mutableStateOf(Tab.MODELS) }
    val scope = rememberCoroutineScope()
    var models by remember { mutableStateOf(emptyList<ModelEntry>()) }
    var selected by remember { mutableStateOf<ModelEntry?>(null) }
    val classifier = remember { Classifier() }
    DisposableEffect(Unit) { onDispose { classifier.close() } }

    // Listing copies the bundled model out of the APK on first start: keep it off the main thread.
    suspend fun refresh() {
        models = withContext(Dispatchers.IO) { ModelStore.discover(context) }
        if (selected == null || selected !in models) selected = models.firstOrNull { it.problem == null }
    }
    LaunchedEffect(Unit) { refresh() }

    Scaffold(
        topBar = { DemoTopBar(tab.title, selected) },
        bottomBar = {
            NavigationBar {
                Tab.entries.forEach { t ->
                    NavigationBarItem(
                        selected = t == tab,
                        onClick = { tab = t },
                        icon = { Icon(painterResource(R.drawable.ic_launcher), contentDescription = null) },
                        label = { Text(t.title) },
                    )
                }
            }
        },
    ) { padding ->
        val modifier = Modifier.padding(padding)
        when (tab) {
            Tab.MODELS ->
                ModelListScreen(
                    models = models,
                    selected = selected,
                    onSelect = {
                        selected = it
                        tab = Tab.CLASSIFY
                    },
                    onRefresh = { scope.launch { refresh() } },
                    modifier = modifier,
                )

            Tab.CLASSIFY -> ClassifyScreen(selected, classifier, modifier)

            Tab.BENCHMARK -> BenchmarkScreen(selected, onBeforeRun = { classifier.close() }, modifier = modifier)
        }
    }
}

@Composable
@OptIn(androidx.compose.material3.ExperimentalMaterial3Api::class)
private fun DemoTopBar(title: String, selected: ModelEntry?) {
    TopAppBar(
        title = {
            Text(if (selected == null) title else "$title · ${selected.title}", maxLines = 1)
        },
    )
}
