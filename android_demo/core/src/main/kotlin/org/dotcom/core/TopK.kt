package org.dotcom.core

import kotlin.math.exp

/** One class of a classification result. */
data class Prediction(val index: Int, val label: String, val probability: Double)

/** Softmax and top-k over a classifier's logits. */
object TopK {
    /** Numerically stable softmax (the maximum is subtracted before exponentiating). */
    fun softmax(logits: FloatArray): DoubleArray {
        require(logits.isNotEmpty()) { "softmax of no logits" }
        val m = logits.max().toDouble()
        val e = DoubleArray(logits.size) { exp(logits[it] - m) }
        val total = e.sum()
        return DoubleArray(e.size) { e[it] / total }
    }

    /**
     * The [k] most probable classes, best first; ties keep the lower index first so the order
     * is deterministic. Labels beyond the label list are named by their index. With
     * [alreadyProbabilities] (a manifest output of kind "probabilities") no softmax is applied.
     */
    fun topK(logits: FloatArray, labels: List<String>, k: Int = 5, alreadyProbabilities: Boolean = false): List<Prediction> {
        require(k >= 1) { "k must be at least 1, got $k" }
        val probs = if (alreadyProbabilities) DoubleArray(logits.size) { logits[it].toDouble() } else softmax(logits)
        return probs.indices
            .sortedWith(compareByDescending<Int> { probs[it] }.thenBy { it })
            .take(k)
            .map { Prediction(it, labels.getOrElse(it) { i -> "class $i" }, probs[it]) }
    }
}
