package org.dotcom.core

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.io.File
import kotlin.math.abs
import kotlin.math.max

class StatsTest {
    /** report/schemas/stats_vectors.json: the build passes its path as a system property. */
    private fun vectors(): Map<*, *> {
        val path = System.getProperty("dotcom.statsVectors") ?: "../../report/schemas/stats_vectors.json"
        val file = File(path)
        assertTrue(file.isFile, "stats vectors not found at ${file.absolutePath}")
        return Json.parse(file.readText()) as Map<*, *>
    }

    @Test
    fun reproducesSharedStatsVectors() {
        val doc = vectors()
        val tol = (doc["tolerance_rel"] as Number).toDouble()
        val cases = doc["cases"] as List<*>
        assertTrue(cases.size >= 5, "expected the shared vectors, got ${cases.size} cases")
        for (case in cases) {
            case as Map<*, *>
            val samples = (case["samples"] as List<*>).map { (it as Number).toDouble() }
            val got = Stats.summarize(samples).toMap()
            val expected = case["expected"] as Map<*, *>
            assertEquals(expected.keys.map { it.toString() }.toSet(), got.keys, "keys of ${case["name"]}")
            for ((key, value) in expected) {
                val want = (value as Number).toDouble()
                val have = got.getValue(key.toString())
                val err = abs(have - want) / max(abs(want), 1e-300)
                assertTrue(err <= tol || have == want, "${case["name"]}.$key: got $have, want $want")
            }
        }
    }

    @Test
    fun percentileInterpolatesBetweenRanks() {
        assertEquals(2.5, Stats.percentile(listOf(4.0, 1.0, 2.0, 3.0), 50.0))
        assertEquals(1.0, Stats.percentile(listOf(4.0, 1.0, 2.0, 3.0), 0.0))
        assertEquals(4.0, Stats.percentile(listOf(4.0, 1.0, 2.0, 3.0), 100.0))
        assertThrows(IllegalArgumentException::class.java) { Stats.percentile(emptyList(), 50.0) }
        assertThrows(IllegalArgumentException::class.java) { Stats.percentile(listOf(1.0), 101.0) }
    }

    @Test
    fun trimmedMeanDropsTenPercentEachSide() {
        // n = 10: drop one from each end.
        val xs = listOf(100.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, -50.0)
        assertEquals(4.5, Stats.trimmedMean(xs))
    }

    @Test
    fun fsumIsExact() {
        assertEquals(1.0, Stats.fsum(listOf(1e100, 1.0, -1e100)))
        assertEquals(0.0, Stats.fsum(emptyList()))
        assertEquals(1.0, Stats.fsum(List(10) { 0.1 }))
    }
}
