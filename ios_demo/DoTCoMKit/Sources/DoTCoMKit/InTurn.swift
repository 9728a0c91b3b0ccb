import Dispatch
import Foundation

/// Times several programs in one process, calling each once per step, in order
/// (A, B, A, B, ...): the first calls, every warm-up step and every timed step.
///
/// Why: a phone slows down as it warms (thermal throttling) and when iOS schedules
/// something else. Programs timed one after the other meet different phones, so their
/// latency ratio (int8/fp32, Core ML vs XNNPACK) moves with the temperature. Called in
/// turn, a slow spell lands on all of them alike and the ratio holds. The host runners
/// follow the same protocol (`bench/runners.py: _time_calls_in_turn`,
/// `runner/src/runner.cpp: run_in_turn`); timed alone is the one-program case, so the
/// app has one loop for both.
///
/// The protocol of every runner of the project: one first call per program (timed apart,
/// it includes lazy initialisation) that counts as the first warm-up call, so
/// `max(warmup, 1)` untimed steps in all, then `repeats` x `iterations` timed steps.
/// Loading is not part of it: each engine loads on its own, before the first step.
public enum InTurn {
    /// Monotonic time in nanoseconds. The app passes the real clock; tests a fake one,
    /// so that the latencies they expect are exact.
    public typealias Clock = () -> UInt64

    /// `DispatchTime.uptimeNanoseconds`, i.e. `mach_absolute_time` on Apple platforms
    /// (the report's `protocol.clock`).
    public static let monotonicClock: Clock = { DispatchTime.now().uptimeNanoseconds }

    /// What one program measured: its first call and its timed calls, in milliseconds.
    public struct Timing: Equatable, Sendable {
        public var firstCallMs: Double
        /// Every timed call of every repeat, in order.
        public var latenciesMs: [Double]

        public init(firstCallMs: Double, latenciesMs: [Double]) {
            self.firstCallMs = firstCallMs
            self.latenciesMs = latenciesMs
        }
    }

    /// A program threw: `index` says which one (its place in `programs`), so that a
    /// group's error reports can name the culprit rather than blame all of them.
    public struct ProgramError: Error, CustomStringConvertible, LocalizedError {
        public let index: Int
        public let underlying: Error

        public init(index: Int, underlying: Error) {
            self.index = index
            self.underlying = underlying
        }

        public var description: String { "program \(index): \(underlying.localizedDescription)" }
        public var errorDescription: String? { description }
    }

    /// Runs the protocol on `programs` and returns one ``Timing`` per program, in order.
    ///
    /// `afterStep` runs after every timed step (all programs called once) with the number
    /// of timed steps done so far, out of `repeats * iterations`: the app samples memory
    /// and moves its progress bar there, outside the timed calls.
    ///
    /// Throws ``DoTCoMError/benchmark(_:)`` for a protocol that measures nothing (before
    /// any call) and ``ProgramError`` when a program throws (the run stops there).
    public static func time(programs: [() throws -> Void], warmup: Int, iterations: Int, repeats: Int = 1,
                            clock: Clock = monotonicClock,
                            afterStep: ((Int) -> Void)? = nil) throws -> [Timing] {
        guard !programs.isEmpty else { throw DoTCoMError.benchmark("no program to time") }
        guard warmup >= 0 else { throw DoTCoMError.benchmark("warm-up must be at least 0, got \(warmup)") }
        guard iterations >= 1 else { throw DoTCoMError.benchmark("iterations must be at least 1, got \(iterations)") }
        guard repeats >= 1 else { throw DoTCoMError.benchmark("repeats must be at least 1, got \(repeats)") }

        func call(_ index: Int) throws {
            do {
                try programs[index]()
            } catch {
                throw ProgramError(index: index, underlying: error)
            }
        }
        func timed(_ index: Int) throws -> Double {
            let start = clock()
            try call(index)
            return Double(clock() - start) / 1e6
        }

        var first = [Double]()
        first.reserveCapacity(programs.count)
        for k in programs.indices {
            first.append(try timed(k))
        }
        for _ in 1..<max(warmup, 1) {  // the first call was the first warm-up call
            for k in programs.indices { try call(k) }
        }
        var samples = [[Double]](repeating: [], count: programs.count)
        for k in programs.indices { samples[k].reserveCapacity(repeats * iterations) }
        var done = 0
        for _ in 0..<repeats {
            for _ in 0..<iterations {
                for k in programs.indices { samples[k].append(try timed(k)) }
                done += 1
                afterStep?(done)
            }
        }
        return zip(first, samples).map { Timing(firstCallMs: $0, latenciesMs: $1) }
    }

    /// The error text every report of a group gets: the failing program's name first
    /// when there are several (`names[index]`, its artifact), the error alone when there
    /// is one, as a benchmark timed alone always reported it.
    public static func message(for error: Error, names: [String]) -> String {
        if let failed = error as? ProgramError {
            let text = failed.underlying.localizedDescription
            guard names.count > 1, names.indices.contains(failed.index) else { return text }
            return "\(names[failed.index]): \(text)"
        }
        return error.localizedDescription
    }
}

extension LatencyReport {
    /// Reports of programs timed together, each naming the others' artifacts in
    /// `protocol.in_turn_with`, in turn order (`report/latency.py: mark_in_turn`). A single
    /// report was timed alone and keeps no list.
    public static func markInTurn(_ reports: [LatencyReport]) -> [LatencyReport] {
        let names = reports.map(\.artifact.name)
        return reports.enumerated().map { i, report in
            var r = report
            r.benchProtocol.inTurnWith = reports.count > 1 ? Array(names[..<i] + names[(i + 1)...]) : nil
            return r
        }
    }

    /// True for a report timed in turn with others (`report/latency.py: timed_in_turn`).
    public var timedInTurn: Bool { !(benchProtocol.inTurnWith ?? []).isEmpty }
}
