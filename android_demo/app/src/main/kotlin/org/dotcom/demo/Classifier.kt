package org.dotcom.demo

import android.graphics.Bitmap
import org.dotcom.core.Prediction
import org.dotcom.core.Preprocess
import org.dotcom.core.TopK

/** The top classes of one image with where the time went. */
data class Classification(val predictions: List<Prediction>, val preprocessMs: Double, val inferenceMs: Double)

/** Keeps one model loaded for the Classify screen and runs image -> top-5. */
class Classifier {
    private var session: ExecuTorchSession? = null

    /** Loads [model] unless it is already loaded; the previous module is freed first. */
    @Synchronized
    fun ensure(model: ModelEntry): ExecuTorchSession {
        session?.let { if (it.model.pte == model.pte) return it }
        close()
        return ExecuTorchSession.open(model, threads = 0).also { session = it }
    }

    /** Preprocesses as the manifest says, runs the model and returns the top [k] classes. */
    @Synchronized
    fun classify(model: ModelEntry, bitmap: Bitmap, k: Int = 5): Classification {
        val manifest = model.manifest ?: throw ModelException(model.problem ?: "${model.pte.name} has no manifest")
        if (manifest.task != "classify") throw ModelException("${model.pte.name} is a ${manifest.task} model; Classify needs a classifier")
        val s = ensure(model)
        val t0 = System.nanoTime()
        val input = Preprocess.toTensor(Images.toArgb(bitmap), manifest.preprocessing)
        val t1 = System.nanoTime()
        val logits = s.run(input)
        val t2 = System.nanoTime()
        val top = TopK.topK(logits, manifest.labels, k, alreadyProbabilities = manifest.outputKind == "probabilities")
        return Classification(top, (t1 - t0) / 1e6, (t2 - t1) / 1e6)
    }

    @Synchronized
    fun close() {
        session?.close()
        session = null
    }
}
