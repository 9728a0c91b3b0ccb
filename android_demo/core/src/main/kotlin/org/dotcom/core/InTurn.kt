package org.dotcom.core

/** What the in-turn loop measured for one program: its first call and its timed calls. */
data class Timings(val firstMs: Double, val latenciesMs: List<Double>)

/** A program of an in-turn run threw; [index] says which, so every member's report can name it. */
class ProgramFailed(val index: Int, override val cause: Throwable) : RuntimeException(cause.message, cause)

/**
 * The benchmark loop of every Android run, with one program or several loaded at once.
 *
 * Every step calls each program once, in the order given (A, B, A, B, ...), the protocol of the
 * host runners (bench/runners.py `_time_calls_in_turn`, runner.cpp `run_in_turn`): a slow spell
 * of the phone (thermal throttling, a background job) then lands on all of them alike, so their
 * latency ratio (int8/fp32) holds where runs one after the other would drift apart. A single
 * program is the same loop with one entry, so there is one protocol to get right.
 */
object InTurn {
    /**
     * Times [programs] in turn; returns their [Timings] in the same order.
     *
     * The first call of each is timed on its own ([Timings.firstMs]) and counts as its first
     * warm-up call, as in the Python and C++ runners, so every runner makes the same number of
     * untimed calls: max(1, [warmup]) untimed steps, then [iterations] timed ones.
     * [onProgress] gets (steps done, steps in all) after each step. A program that throws ends
     * the run with [ProgramFailed] naming its index.
     */
    fun time(
        programs: List<() -> Any?>,
        warmup: Int,
        iterations: Int,
        clock: () -> Long = System::nanoTime,
        onProgress: (done: Int, total: Int) -> Unit = { _, _ -> },
    ): List<Timings> {
        require(programs.isNotEmpty()) { "no program to time" }
        require(warmup >= 0) { "warm-up must be >= 0, got $warmup" }
        require(iterations >= 1) { "iterations must be >= 1, got $iterations" }
        val total = maxOf(warmup, 1) + iterations
        var done = 0

        fun step(record: (index: Int, ms: Double) -> Unit) {
            for ((k, program) in programs.withIndex()) {
                val start = clock()
                try {
                    program()
                } catch (e: Exception) {
                    throw ProgramFailed(k, e)
                }
                record(k, (clock() - start) / 1e6)
            }
            onProgress(++done, total)
        }

        val first = DoubleArray(programs.size)
        step { k, ms -> first[k] = ms }
        repeat(total - 1 - iterations) { step { _, _ -> } }
        val latencies = List(programs.size) { ArrayList<Double>(iterations) }
        repeat(iterations) { step { k, ms -> latencies[k].add(ms) } }
        return programs.indices.map { Timings(first[it], latencies[it]) }
    }

    /**
     * `protocol.in_turn_with` of each of [names] (artifact names, in run order): the others, in
     * order; null for a program timed alone, where the report omits the key.
     */
    fun others(names: List<String>): List<List<String>?> =
        if (names.size < 2) names.map { null } else names.indices.map { i -> names.filterIndexed { j, _ -> j != i } }

    /**
     * The error of every member's report when [failing] failed with [message]: a report must say
     * which program broke the run, and it may be another one than the report's own.
     */
    fun failureMessage(failing: String, message: String): String = if (message.contains(failing)) message else "$failing: $message"

    /**
     * The programs of a comma-separated list (the headless run's `model_name` extra), in order.
     * One line for a blank entry or a name given twice (its reports would share a file name).
     */
    fun parseNames(list: String): List<String> {
        val names = list.split(',').map { it.trim() }
        require(names.none { it.isEmpty() }) { "model_name '$list' has an empty entry" }
        val twice = names.groupingBy { it }.eachCount().filterValues { it > 1 }.keys
        require(twice.isEmpty()) { "model_name lists ${twice.first()} twice" }
        return names
    }
}
