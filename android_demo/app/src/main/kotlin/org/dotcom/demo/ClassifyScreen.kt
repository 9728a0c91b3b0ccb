package org.dotcom.demo

import android.graphics.Bitmap
import android.net.Uri
import androidx.activity.compose.rememberLauncherForActivityResult
import androidx.activity.result.PickVisualMediaRequest
import androidx.activity.result.contract.ActivityResultContracts
import androidx.compose.foundation.Image
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.heightIn
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.rememberScrollState
import androidx.compose.foundation.verticalScroll
import androidx.compose.material3.Button
import androidx.compose.material3.CircularProgressIndicator
import androidx.compose.material3.LinearProgressIndicator
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.rememberCoroutineScope
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.graphics.asImageBitmap
import androidx.compose.ui.platform.LocalContext
import androidx.compose.ui.unit.dp
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext

/** Pick an image (gallery or camera), preprocess it as the manifest says, show the top 5. */
@Composable
fun ClassifyScreen(model: ModelEntry?, classifier: Classifier, modifier: Modifier = Modifier) {
    val context = LocalContext.current
    val scope = rememberCoroutineScope()
    var image by remember { mutableStateOf<Bitmap?>(null) }
    var result by remember { mutableStateOf<Classification?>(null) }
    var error by remember { mutableStateOf<String?>(null) }
    var busy by remember { mutableStateOf(false) }
    var camera by remember { mutableStateOf(false) }

    fun classify(bitmap: Bitmap) {
        val m = model ?: return
        image = bitmap
        result = null
        error = null
        busy = true
        scope.launch {
            try {
                result = withContext(Dispatchers.Default) { classifier.classify(m, bitmap) }
            } catch (e: ModelException) {
                error = e.message
            } catch (e: ImageException) {
                error = e.message
            } finally {
                busy = false
            }
        }
    }

    fun load(uri: Uri) {
        val size = model?.manifest?.preprocessing?.resize ?: 256
        scope.launch {
            try {
                classify(withContext(Dispatchers.IO) { Images.decode(context, uri, size) })
            } catch (e: ImageException) {
                error = e.message
            }
        }
    }

    val picker =
        rememberLauncherForActivityResult(ActivityResultContracts.PickVisualMedia()) { uri ->
            if (uri != null) load(uri)
        }

    if (camera) {
        CameraCapture(
            onCaptured = {
                camera = false
                classify(it)
            },
            onError = {
                camera = false
                error = it
            },
            modifier = modifier,
        )
        return
    }

    Column(
        modifier.padding(16.dp).verticalScroll(rememberScrollState()),
        verticalArrangement = Arrangement.spacedBy(12.dp),
    ) {
        if (model == null) {
            Text("Select a model on the Models tab first.")
            return@Column
        }
        Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
            Button(
                enabled = !busy,
                onClick = { picker.launch(PickVisualMediaRequest(ActivityResultContracts.PickVisualMedia.ImageOnly)) },
            ) { Text("Gallery") }
            OutlinedButton(enabled = !busy, onClick = { camera = true }) { Text("Camera") }
        }
        image?.let {
            Image(it.asImageBitmap(), contentDescription = "input image", modifier = Modifier.fillMaxWidth().heightIn(max = 320.dp))
        }
        if (busy) CircularProgressIndicator()
        error?.let { Text(it, color = MaterialTheme.colorScheme.error) }
        result?.let { r ->
            r.predictions.forEach { p ->
                Column(Modifier.fillMaxWidth()) {
                    Text("${p.label}  ${"%.1f".format(p.probability * 100)}%")
                    LinearProgressIndicator(progress = { p.probability.toFloat() }, modifier = Modifier.fillMaxWidth())
                }
            }
            Text(
                "inference ${"%.2f".format(r.inferenceMs)} ms · preprocessing ${"%.2f".format(r.preprocessMs)} ms",
                style = MaterialTheme.typography.bodySmall,
            )
        }
    }
}
