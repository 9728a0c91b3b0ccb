package org.dotcom.core

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertSame
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

class InTurnTest {
    /** Programs that log their calls and advance a fake clock by their own scripted milliseconds. */
    private class Script(vararg durationsMs: List<Double>) {
        var now = 0L
        val calls = ArrayList<String>()
        val programs: List<() -> Unit> =
            durationsMs.mapIndexed { k, durations ->
                var n = 0
                val program: () -> Unit = {
                    calls.add("ABCDEFGH"[k].toString())
                    now += (durations[n++ % durations.size] * 1e6).toLong()
                }
                program
            }
    }

    @Test
    fun callsEachProgramOncePerStepInOrder() {
        val s = Script(listOf(1.0), listOf(2.0), listOf(3.0))
        InTurn.time(s.programs, warmup = 2, iterations = 3, clock = { s.now })
        // max(1, warm-up) untimed steps (the first call is the first warm-up call), then the timed ones.
        assertEquals("ABC".repeat(2 + 3), s.calls.joinToString(""))
    }

    @Test
    fun fakeClockGivesExactLatenciesWithTheFirstCallApart() {
        // A: first 10, warm-up 9, timed 1, 2, 3; B twice as slow throughout.
        val a = listOf(10.0, 9.0, 1.0, 2.0, 3.0)
        val s = Script(a, a.map { it * 2 })
        val t = InTurn.time(s.programs, warmup = 2, iterations = 3, clock = { s.now })
        assertEquals(listOf(Timings(10.0, listOf(1.0, 2.0, 3.0)), Timings(20.0, listOf(2.0, 4.0, 6.0))), t)
    }

    @Test
    fun zeroWarmUpStillMakesOneUntimedFirstCall() {
        val s = Script(listOf(7.0, 1.0, 2.0))
        val t = InTurn.time(s.programs, warmup = 0, iterations = 2, clock = { s.now })
        assertEquals(listOf(Timings(7.0, listOf(1.0, 2.0))), t)
        assertEquals(3, s.calls.size)
    }

    @Test
    fun progressCountsSteps() {
        val s = Script(listOf(1.0), listOf(1.0))
        val seen = ArrayList<Pair<Int, Int>>()
        InTurn.time(s.programs, warmup = 3, iterations = 2, clock = { s.now }) { done, total -> seen.add(done to total) }
        assertEquals((1..5).map { it to 5 }, seen)
    }

    @Test
    fun aThrowingProgramIsNamedByIndex() {
        var calls = 0
        val boom = IllegalStateException("inference failed")
        val programs = listOf({ calls++ }, { if (calls == 2) throw boom })
        val e = assertThrows(ProgramFailed::class.java) { InTurn.time(programs, warmup = 1, iterations = 5) }
        assertEquals(1, e.index)
        assertSame(boom, e.cause)
        assertEquals(2, calls) // stopped at once: A ran twice, B failed on its second call
        assertThrows(IllegalArgumentException::class.java) { InTurn.time(emptyList(), 1, 1) }
        assertThrows(IllegalArgumentException::class.java) { InTurn.time(programs, 1, 0) }
    }

    @Test
    fun othersNameEveryOtherProgramInOrder() {
        assertEquals(listOf(listOf("b", "c"), listOf("a", "c"), listOf("a", "b")), InTurn.others(listOf("a", "b", "c")))
        assertEquals(listOf(null), InTurn.others(listOf("a")))
    }

    @Test
    fun failureMessageNamesTheFailingProgram() {
        assertEquals("b.pte: inference failed", InTurn.failureMessage("b.pte", "inference failed"))
        assertEquals("cannot load b.pte: Error 0x20", InTurn.failureMessage("b.pte", "cannot load b.pte: Error 0x20"))
    }

    @Test
    fun parseNamesSplitsAndRefusesDuplicates() {
        assertEquals(listOf("a.pte", "b.pte"), InTurn.parseNames("a.pte, b.pte"))
        assertEquals(listOf("a.pte"), InTurn.parseNames("a.pte"))
        val twice = assertThrows(IllegalArgumentException::class.java) { InTurn.parseNames("a.pte,b.pte,a.pte") }
        assertEquals("model_name lists a.pte twice", twice.message)
        assertThrows(IllegalArgumentException::class.java) { InTurn.parseNames("a.pte,,b.pte") }
    }

    @Test
    fun protocolWritesInTurnWithOnlyWhenTimedInTurn() {
        val alone = Protocol(warmup = 1, iterations = 2).toMap()
        assertFalse(alone.containsKey("in_turn_with"))
        val paired = Protocol(warmup = 1, iterations = 2, inTurnWith = listOf("b.pte")).toMap()
        assertEquals(listOf("b.pte"), paired["in_turn_with"])
        val back = Json.parse(Json.write(paired)) as Map<*, *>
        assertEquals(listOf("b.pte"), back["in_turn_with"])
        assertThrows(IllegalArgumentException::class.java) { Protocol(1, 2, inTurnWith = emptyList()) }
        assertThrows(IllegalArgumentException::class.java) { Protocol(1, 2, inTurnWith = listOf(" ")) }
    }

    @Test
    fun resultsAreOneReportAloneAndAnArrayInTurn() {
        val manifest = Manifest.parse(TestManifests.json())
        val device = DeviceInfo(os = "Android 15 (API 35)")

        fun report(name: String, others: List<String>?) = LatencyReport(
            artifact = ArtifactInfo.fromManifest(manifest, null).copy(name = name),
            device = device,
            protocol = Protocol(warmup = 1, iterations = 2, inTurnWith = others),
            measurements = Measurements(listOf(1.0, 2.0)),
        )
        val one = Json.parse(LatencyReport.resultsJson(listOf(report("a.pte", null)))) as Map<*, *>
        assertNull((one["protocol"] as Map<*, *>)["in_turn_with"])
        assertFalse((one["protocol"] as Map<*, *>).containsKey("in_turn_with"))
        val pair = Json.parse(LatencyReport.resultsJson(listOf(report("a.pte", listOf("b.pte")), report("b.pte", listOf("a.pte")))))
        assertTrue(pair is List<*>)
        val names = (pair as List<*>).map { ((it as Map<*, *>)["artifact"] as Map<*, *>)["name"] }
        assertEquals(listOf("a.pte", "b.pte"), names)
        assertEquals(listOf("a.pte"), ((pair[1] as Map<*, *>)["protocol"] as Map<*, *>)["in_turn_with"])
    }
}
