import DoTCoMKit
import Foundation
import XCTest

/// A clock that only moves when a fake program says it ran, so latencies are exact.
final class FakeClock {
    var nanoseconds: UInt64 = 1_000
    var reads = 0

    func read() -> UInt64 {
        reads += 1
        return nanoseconds
    }
}

struct Broken: Error, LocalizedError {
    var errorDescription: String? { "backend 'CoreMLBackend' is not registered" }
}

final class InTurnTests: XCTestCase {
    /// Program k takes `costs[k]` ms per call and logs its letter; `failAt` throws on that call.
    func programs(_ costs: [Double], clock: FakeClock, log: LogBox, failAt: (program: Int, call: Int)? = nil)
        -> [() throws -> Void] {
        costs.enumerated().map { k, cost in
            let letter = String(UnicodeScalar(UInt8(65 + k)))
            return {
                log.calls.append(letter)
                if let failAt, failAt.program == k, log.calls.filter({ $0 == letter }).count == failAt.call {
                    throw Broken()
                }
                clock.nanoseconds += UInt64(cost * 1e6)
            }
        }
    }

    final class LogBox { var calls: [String] = [] }

    func testEveryStepCallsEachProgramOnceInOrder() throws {
        let clock = FakeClock()
        let log = LogBox()
        let timings = try InTurn.time(programs: programs([1, 2, 3], clock: clock, log: log),
                                      warmup: 2, iterations: 2, repeats: 2, clock: clock.read)
        XCTAssertEqual(timings.count, 3)
        // 1 first call (the first of 2 warm-up calls) + 1 warm-up + 2 x 2 timed steps, each A, B, C.
        XCTAssertEqual(log.calls, Array(repeating: ["A", "B", "C"], count: 6).flatMap { $0 })
    }

    func testFirstCallIsApartFromWarmupAndTimedSamples() throws {
        let clock = FakeClock()
        let log = LogBox()
        // A's first call costs 40 ms (lazy initialisation), then 2 ms; B always 5 ms.
        var aCalls = 0
        let a: () throws -> Void = {
            aCalls += 1
            clock.nanoseconds += aCalls == 1 ? 40_000_000 : 2_000_000
        }
        let b = programs([5], clock: clock, log: log)[0]
        let timings = try InTurn.time(programs: [a, b], warmup: 3, iterations: 4, repeats: 1, clock: clock.read)
        XCTAssertEqual(timings[0], InTurn.Timing(firstCallMs: 40, latenciesMs: [2, 2, 2, 2]))
        XCTAssertEqual(timings[1], InTurn.Timing(firstCallMs: 5, latenciesMs: [5, 5, 5, 5]))
        XCTAssertEqual(aCalls, 3 + 4)  // the first call is the first of the 3 warm-up calls
        // Warm-up calls are not timed: two clock reads per timed call only.
        XCTAssertEqual(clock.reads, 2 * (2 + 2 * 4))
    }

    func testFakeClockGivesExactLatenciesAcrossRepeats() throws {
        let clock = FakeClock()
        let log = LogBox()
        var steps = [Int]()
        let timings = try InTurn.time(programs: programs([1.5, 0.25], clock: clock, log: log),
                                      warmup: 0, iterations: 3, repeats: 2, clock: clock.read,
                                      afterStep: { steps.append($0) })
        XCTAssertEqual(timings.map(\.latenciesMs), [Array(repeating: 1.5, count: 6), Array(repeating: 0.25, count: 6)])
        XCTAssertEqual(timings.map(\.firstCallMs), [1.5, 0.25])
        XCTAssertEqual(steps, [1, 2, 3, 4, 5, 6])
    }

    /// One program timed alone is the same loop (what `Benchmarker.run` does).
    func testOneProgramIsTheTimedAloneCase() throws {
        let clock = FakeClock()
        let log = LogBox()
        let timings = try InTurn.time(programs: programs([7], clock: clock, log: log),
                                      warmup: 1, iterations: 3, clock: clock.read)
        XCTAssertEqual(timings, [InTurn.Timing(firstCallMs: 7, latenciesMs: [7, 7, 7])])
        XCTAssertEqual(log.calls.count, 1 + 3)  // warm-up 1: the first call
    }

    func testErrorNamesTheProgramThatThrew() throws {
        let clock = FakeClock()
        let log = LogBox()
        // B throws on its second call, in the first warm-up step; the run stops there.
        let group = programs([1, 2, 3], clock: clock, log: log, failAt: (program: 1, call: 2))
        XCTAssertThrowsError(try InTurn.time(programs: group, warmup: 5, iterations: 2, clock: clock.read)) { error in
            XCTAssertEqual((error as? InTurn.ProgramError)?.index, 1)
            XCTAssertEqual("\(error)", "program 1: backend 'CoreMLBackend' is not registered")
            XCTAssertEqual(InTurn.message(for: error, names: ["a_q8.pte", "b.mlpackage", "c_fp32.pte"]),
                           "b.mlpackage: backend 'CoreMLBackend' is not registered")
            // Timed alone, the message stays the error itself.
            XCTAssertEqual(InTurn.message(for: error, names: ["b.mlpackage"]),
                           "backend 'CoreMLBackend' is not registered")
        }
        XCTAssertEqual(log.calls, ["A", "B", "C", "A", "B"])
    }

    func testRejectsAProtocolThatMeasuresNothingBeforeAnyCall() {
        let clock = FakeClock()
        let log = LogBox()
        let group = programs([1, 2], clock: clock, log: log)
        for (warmup, iterations, repeats, message) in [
            (0, 0, 1, "iterations must be at least 1, got 0"),
            (0, 1, 0, "repeats must be at least 1, got 0"),
            (-1, 1, 1, "warm-up must be at least 0, got -1"),
        ] {
            XCTAssertThrowsError(try InTurn.time(programs: group, warmup: warmup, iterations: iterations,
                                                 repeats: repeats, clock: clock.read)) { error in
                XCTAssertEqual(error as? DoTCoMError, .benchmark(message))
            }
        }
        XCTAssertThrowsError(try InTurn.time(programs: [], warmup: 0, iterations: 1, clock: clock.read))
        XCTAssertEqual(log.calls, [])
    }
}

final class InTurnReportTests: XCTestCase {
    func report(_ name: String, runner: String = "ios", unit: String? = nil) -> LatencyReport {
        LatencyReport(artifact: .init(name: name, backend: "xnnpack", quantization: "fp32"),
                      device: .init(os: "iOS 17.5", threads: 0), runtime: .init(runner: runner, computeUnit: unit),
                      protocol: .init(warmup: 1, iterations: 1), error: "x")
    }

    func protocolJSON(_ report: LatencyReport) throws -> [String: Any] {
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: report.jsonData()) as? [String: Any])
        return try XCTUnwrap(json["protocol"] as? [String: Any])
    }

    func testMarksEachWithTheOthersInTurnOrder() throws {
        let marked = LatencyReport.markInTurn([report("a_q8.pte"), report("b.mlpackage", runner: "coreml", unit: "ALL"),
                                               report("c_fp32.pte")])
        XCTAssertEqual(marked.map(\.benchProtocol.inTurnWith), [["b.mlpackage", "c_fp32.pte"],
                                                                ["a_q8.pte", "c_fp32.pte"],
                                                                ["a_q8.pte", "b.mlpackage"]])
        XCTAssertEqual(try protocolJSON(marked[1])["in_turn_with"] as? [String], ["a_q8.pte", "c_fp32.pte"])
        XCTAssertEqual(marked.map(\.suggestedFileName), ["a_q8__ios-in-turn__t0.json",
                                                         "b__coreml-in-turn__t0__all.json",
                                                         "c_fp32__ios-in-turn__t0.json"])
        let decoded = try JSONDecoder().decode(LatencyReport.self, from: marked[0].jsonData())
        XCTAssertEqual(decoded, marked[0])
    }

    /// The schema allows a non-empty list or no key: timed alone, the key is left out.
    func testTimedAloneOmitsTheKey() throws {
        let alone = LatencyReport.markInTurn([report("a_q8.pte")])[0]
        XCTAssertNil(alone.benchProtocol.inTurnWith)
        XCTAssertFalse(alone.timedInTurn)
        XCTAssertFalse(try protocolJSON(alone).keys.contains("in_turn_with"))
        XCTAssertEqual(alone.suggestedFileName, "a_q8__ios__t0.json")
        var empty = alone
        empty.benchProtocol.inTurnWith = []
        XCTAssertFalse(try protocolJSON(empty).keys.contains("in_turn_with"))
        XCTAssertEqual(empty.suggestedFileName, "a_q8__ios__t0.json")
    }
}
