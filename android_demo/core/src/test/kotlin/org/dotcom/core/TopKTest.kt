package org.dotcom.core

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Test
import kotlin.math.exp

class TopKTest {
    @Test
    fun softmaxIsStableAndSumsToOne() {
        val p = TopK.softmax(floatArrayOf(1000f, 1000f, 999f))
        assertEquals(1.0, p.sum(), 1e-12)
        val e = exp(-1.0)
        assertEquals(1.0 / (2.0 + e), p[0], 1e-12)
        assertEquals(e / (2.0 + e), p[2], 1e-12)
    }

    @Test
    fun topKOrdersByProbabilityThenIndex() {
        val r = TopK.topK(floatArrayOf(0.5f, 3f, 3f, -1f, 2f), listOf("a", "b", "c", "d"), k = 3)
        assertEquals(listOf(1, 2, 4), r.map { it.index })
        assertEquals(listOf("b", "c", "class 4"), r.map { it.label })
        assertEquals(2, TopK.topK(floatArrayOf(1f, 2f), emptyList(), k = 5).size)
        val probs = TopK.topK(floatArrayOf(0.25f, 0.75f), listOf("a", "b"), alreadyProbabilities = true)
        assertEquals(listOf(0.75, 0.25), probs.map { it.probability })
    }
}
