import DoTCoMKit
import XCTest
@testable import DoTCoMDemo

/// Benchmarks every bundled model on the connected phone and writes one latency report
/// per model and engine configuration.
///
/// Run with `dotcom-mobile ios bench ARTIFACT... --device NAME [--in-turn]`, or by hand:
///
///     TEST_RUNNER_DOTCOM_ITERATIONS=50 xcodebuild test -project DoTCoMDemo.xcodeproj \
///         -scheme DoTCoMDemo -destination 'platform=iOS,name=My iPhone'
///
/// Models come from this bundle's `BenchmarkModels` folder (where the CLI copies the
/// artifact and its manifest) and from the app's `Models` folder. Settings come from the
/// environment (xcodebuild passes `TEST_RUNNER_<NAME>` variables as `<NAME>`):
/// `DOTCOM_WARMUP`, `DOTCOM_ITERATIONS`, `DOTCOM_REPEATS`, `DOTCOM_COMPUTE_UNITS`
/// (comma-separated: ALL,CPU_AND_NE,CPU_ONLY; Core ML models only) and `DOTCOM_IN_TURN`
/// (`1`: every model found is loaded at once and timed in turn, in file-name order,
/// BenchmarkModels first, so that a thermal slow spell lands on all of them and their
/// ratio holds; a Core ML model then runs once, so `DOTCOM_COMPUTE_UNITS` names one unit).
///
/// Each report is written to the app's Documents/Reports, attached to the test result
/// (`xcresult`) and printed on one line prefixed `DOTCOM-REPORT-JSON: `, which is how
/// the CLI collects it from xcodebuild's output without copying files off the phone.
final class ModelBenchmarkTests: XCTestCase {
    static let reportPrefix = "DOTCOM-REPORT-JSON: "

    private var environment: [String: String] { ProcessInfo.processInfo.environment }

    private func integer(_ name: String, default value: Int) -> Int {
        environment[name].flatMap { Int($0) } ?? value
    }

    private var computeUnits: [ComputeUnitsChoice] {
        let raw = environment["DOTCOM_COMPUTE_UNITS"] ?? "ALL,CPU_AND_NE,CPU_ONLY"
        return raw.split(separator: ",").compactMap { ComputeUnitsChoice(rawValue: $0.trimmingCharacters(in: .whitespaces).uppercased()) }
    }

    private var inTurn: Bool {
        ["1", "true", "yes"].contains((environment["DOTCOM_IN_TURN"] ?? "").lowercased())
    }

    private func bundledModels() -> [ModelEntry] {
        let testBundle = Bundle(for: ModelBenchmarkTests.self)
        var models = ModelStore.scan(testBundle.url(forResource: "BenchmarkModels", withExtension: nil), bundled: true)
        models += ModelStore.scan(Bundle.main.url(forResource: "Models", withExtension: nil), bundled: true)
        return models
    }

    func testBenchmarkEveryBundledModel() throws {
        let models = bundledModels()
        try XCTSkipIf(models.isEmpty, "no bundled models: add a .pte/.mlpackage with its manifest to BenchmarkModels or Models")

        let base = BenchmarkSettings(warmup: integer("DOTCOM_WARMUP", default: 10),
                                     iterations: integer("DOTCOM_ITERATIONS", default: 50),
                                     repeats: integer("DOTCOM_REPEATS", default: 1))
        var failures = [String]()
        if inTurn {
            let units = computeUnits
            guard models.count >= 2 else {
                return XCTFail("DOTCOM_IN_TURN times two or more models together; found \(models.count)")
            }
            guard units.count == 1 || models.allSatisfy({ $0.format == .pte }) else {
                return XCTFail("DOTCOM_IN_TURN runs each Core ML model once: set DOTCOM_COMPUTE_UNITS to one unit")
            }
            var settings = base
            settings.computeUnits = units.first ?? .all
            for report in Benchmarker.runInTurn(models, settings: settings) {
                try publish(report, failures: &failures)
            }
        } else {
            for model in models {
                let units: [ComputeUnitsChoice] = model.format == .pte ? [.all] : computeUnits
                for unit in units {
                    var settings = base
                    settings.computeUnits = unit
                    try publish(Benchmarker.run(model, settings: settings), failures: &failures)
                }
            }
        }
        // Error reports are written too; the test still fails so CI notices.
        XCTAssertTrue(failures.isEmpty, failures.joined(separator: "\n"))
    }

    /// Writes `report` to Documents/Reports, prints it for the CLI and attaches it to the result.
    private func publish(_ report: LatencyReport, failures: inout [String]) throws {
        let url = try ReportStore.write(report)
        let data = try report.jsonData(pretty: false)
        print(Self.reportPrefix + String(decoding: data, as: UTF8.self))
        let attachment = XCTAttachment(contentsOfFile: url)
        attachment.name = url.lastPathComponent
        attachment.lifetime = .keepAlways
        add(attachment)

        let engine = report.runtime.computeUnit ?? report.runtime.runner
        if report.status != "ok" {
            failures.append("\(report.artifact.name) [\(report.runtime.runner)]: \(report.error ?? "error")")
        } else if let r = report.results {
            print(String(format: "%@ %@%@: p50 %.2f ms, p90 %.2f ms, load %.1f ms",
                         report.artifact.name, engine, report.timedInTurn ? " (in turn)" : "",
                         r.p50Ms, r.p90Ms, r.loadMs ?? 0))
        }
    }
}
