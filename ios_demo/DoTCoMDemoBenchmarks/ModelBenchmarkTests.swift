import DoTCoMKit
import XCTest
@testable import DoTCoMDemo

/// Benchmarks every bundled model on the connected phone and writes one latency report
/// per model and engine configuration.
///
/// Run with `dotcom-mobile ios bench ARTIFACT --device NAME`, or by hand:
///
///     TEST_RUNNER_DOTCOM_ITERATIONS=50 xcodebuild test -project DoTCoMDemo.xcodeproj \
///         -scheme DoTCoMDemo -destination 'platform=iOS,name=My iPhone'
///
/// Models come from this bundle's `BenchmarkModels` folder (where the CLI copies the
/// artifact and its manifest) and from the app's `Models` folder. Settings come from the
/// environment (xcodebuild passes `TEST_RUNNER_<NAME>` variables as `<NAME>`):
/// `DOTCOM_WARMUP`, `DOTCOM_ITERATIONS`, `DOTCOM_REPEATS`, `DOTCOM_COMPUTE_UNITS`
/// (comma-separated: ALL,CPU_AND_NE,CPU_ONLY; Core ML models only).
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
        for model in models {
            let units: [ComputeUnitsChoice] = model.format == .pte ? [.all] : computeUnits
            for unit in units {
                var settings = base
                settings.computeUnits = unit
                let report = Benchmarker.run(model, settings: settings)
                let url = try ReportStore.write(report)

                let data = try report.jsonData(pretty: false)
                print(Self.reportPrefix + String(decoding: data, as: UTF8.self))
                let attachment = XCTAttachment(contentsOfFile: url)
                attachment.name = url.lastPathComponent
                attachment.lifetime = .keepAlways
                add(attachment)

                if report.status != "ok" {
                    failures.append("\(model.name) [\(report.runtime.runner)]: \(report.error ?? "error")")
                } else if let r = report.results {
                    print(String(format: "%@ %@: p50 %.2f ms, p90 %.2f ms, load %.1f ms",
                                 model.name, report.runtime.computeUnit ?? report.runtime.runner,
                                 r.p50Ms, r.p90Ms, r.loadMs ?? 0))
                }
            }
        }
        // Error reports are written too; the test still fails so CI notices.
        XCTAssertTrue(failures.isEmpty, failures.joined(separator: "\n"))
    }
}
