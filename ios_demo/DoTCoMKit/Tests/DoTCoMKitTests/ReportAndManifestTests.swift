import DoTCoMKit
import Foundation
import XCTest

/// A manifest as `dotcom-mobile export` writes it (all required fields, a few optional).
let sampleManifestJSON = """
{
  "schema": "dotcom-mobile/manifest",
  "schema_version": 1,
  "artifact": {"file": "dotcom_tiny_xnnpack_q8.pte", "format": "pte", "size_bytes": 123456,
               "sha256": "\(String(repeating: "ab", count: 32))"},
  "model": "dotcom_tiny",
  "task": "classify",
  "num_classes": 4,
  "input": {"name": "x", "shape": [1, 3, 64, 64], "layout": "NCHW", "dtype": "float32", "color": "RGB"},
  "preprocessing": {"resize": 72, "crop": [64, 64], "interpolation": "bilinear",
                    "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "crop_pct": 0.8888888888888888},
  "outputs": [{"name": "logits", "shape": [1, 4], "kind": "logits"}],
  "labels": ["circle", "square", "triangle", "cross"],
  "backend": "xnnpack",
  "compute_unit": null,
  "quantization": "q8",
  "quantization_details": {"scheme": "static"},
  "delegation": {"delegated_nodes": 98, "total_nodes": 100, "fraction": 0.98, "partitions": 1,
                 "non_delegated_ops": {"aten.view_copy.default": 2}},
  "versions": {"executorch": "1.5.1", "torch": "2.14.1", "coremltools": null},
  "created_at": "2026-11-24T00:00:00Z"
}
"""

final class ManifestTests: XCTestCase {
    func testDecodesExportManifest() throws {
        let m = try Manifest.decode(Data(sampleManifestJSON.utf8))
        XCTAssertEqual(m.model, "dotcom_tiny")
        XCTAssertEqual(m.input.shape, [1, 3, 64, 64])
        XCTAssertEqual(m.inputSize.height, 64)
        XCTAssertEqual(m.preprocessing.interpolation, .bilinear)
        XCTAssertEqual(m.preprocessing.resize, 72)
        XCTAssertEqual(m.labels.count, m.numClasses)
        XCTAssertEqual(m.label(2), "triangle")
        XCTAssertEqual(m.label(9), "class 9")
        XCTAssertEqual(m.executorchVersion, "1.5.1")
        XCTAssertNil(m.computeUnit)
        XCTAssertEqual(m.delegation?.partitions, 1)
        XCTAssertEqual(m.delegation?.nonDelegatedOps["aten.view_copy.default"], 2)
    }

    func testMissingFieldIsNamed() throws {
        var object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(sampleManifestJSON.utf8)) as? [String: Any])
        var input = try XCTUnwrap(object["input"] as? [String: Any])
        input.removeValue(forKey: "shape")
        object["input"] = input
        let data = try JSONSerialization.data(withJSONObject: object)
        XCTAssertThrowsError(try Manifest.decode(data, source: "m.json")) { error in
            XCTAssertEqual("\(error)", "m.json: missing field input.shape")
        }
    }

    func testRejectsWhatTheAppCannotFeed() throws {
        for (from, to, message) in [
            ("\"layout\": \"NCHW\"", "\"layout\": \"NHWC\"", "input.layout 'NHWC' is not NCHW"),
            ("\"crop\": [64, 64]", "\"crop\": [32, 32]", "does not match the input's 64x64"),
            ("\"schema_version\": 1", "\"schema_version\": 2", "schema_version 2 is not supported"),
            ("\"num_classes\": 4", "\"num_classes\": 5", "4 labels for 5 classes"),
        ] {
            let json = sampleManifestJSON.replacingOccurrences(of: from, with: to)
            XCTAssertNotEqual(json, sampleManifestJSON, from)
            XCTAssertThrowsError(try Manifest.decode(Data(json.utf8))) { error in
                XCTAssertTrue("\(error)".contains(message), "\(error) should contain \(message)")
            }
        }
        XCTAssertThrowsError(try Manifest.decode(Data("not json".utf8), source: "x.json")) { error in
            XCTAssertTrue("\(error)".hasPrefix("x.json: not a valid manifest"), "\(error)")
        }
    }
}

final class LatencyReportTests: XCTestCase {
    func makeReport(latencies: [Double]) throws -> LatencyReport {
        let m = try Manifest.decode(Data(sampleManifestJSON.utf8))
        return LatencyReport(
            artifact: .init(manifest: m),
            device: .init(os: "iOS 17.5", model: "iPhone15,2", cores: 6, threads: 0, thermalState: "nominal"),
            runtime: .init(runner: "ios", executorchVersion: "1.5.1"),
            protocol: .init(warmup: 5, iterations: latencies.count),
            results: try .init(loadMs: 12.5, firstInferenceMs: 9.0, latenciesMs: latencies, peakMemoryBytes: 50_000_000),
            delegation: m.delegation)
    }

    func testEncodesSchemaKeysAndStatistics() throws {
        let report = try makeReport(latencies: [3, 1, 2, 4, 10])
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: report.jsonData()) as? [String: Any])
        XCTAssertEqual(json["schema"] as? String, "latency-report")
        XCTAssertEqual(json["schema_version"] as? Int, 1)
        XCTAssertEqual(json["status"] as? String, "ok")
        let proto = try XCTUnwrap(json["protocol"] as? [String: Any])
        XCTAssertEqual(proto["iterations"] as? Int, 5)
        XCTAssertEqual(proto["clock"] as? String, "mach_absolute_time")
        let artifact = try XCTUnwrap(json["artifact"] as? [String: Any])
        XCTAssertEqual(artifact["name"] as? String, "dotcom_tiny_xnnpack_q8.pte")
        XCTAssertEqual(artifact["input_shape"] as? [Int], [1, 3, 64, 64])
        XCTAssertEqual(artifact["size_bytes"] as? Int, 123456)
        let results = try XCTUnwrap(json["results"] as? [String: Any])
        XCTAssertEqual(results["p50_ms"] as? Double, 3)
        XCTAssertEqual(results["min_ms"] as? Double, 1)
        XCTAssertEqual(results["max_ms"] as? Double, 10)
        XCTAssertEqual(results["mean_ms"] as? Double, 4)
        XCTAssertEqual(results["latencies_ms"] as? [Double], [3, 1, 2, 4, 10])
        XCTAssertEqual(results["peak_memory_bytes"] as? Int, 50_000_000)
        let created = try XCTUnwrap(json["created_at"] as? String)
        XCTAssertTrue(created.hasSuffix("Z"), created)
        XCTAssertEqual(report.suggestedFileName, "dotcom_tiny_xnnpack_q8__ios__t0.json")
    }

    func testRoundTrips() throws {
        let report = try makeReport(latencies: [5.5, 6.5, 7.25])
        let decoded = try JSONDecoder().decode(LatencyReport.self, from: report.jsonData())
        XCTAssertEqual(decoded, report)
    }

    /// The schema requires `results` (null) and a non-empty `error` for failed runs.
    func testErrorReportKeepsRequiredNulls() throws {
        let report = LatencyReport(
            artifact: .init(name: "missing.pte", backend: "xnnpack", quantization: "fp32"),
            device: .init(os: "iOS 17.5"), runtime: .init(runner: "coreml", computeUnit: "CPU_ONLY"),
            protocol: .init(warmup: 0, iterations: 0), error: "")
        let data = try report.jsonData()
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertTrue(json.keys.contains("results"))
        XCTAssertTrue(json["results"] is NSNull)
        XCTAssertEqual(json["status"] as? String, "error")
        XCTAssertEqual(json["error"] as? String, "unknown error")
        XCTAssertEqual(report.suggestedFileName, "missing__coreml__t0__cpu_only.json")
    }

    func testResultsNeedSamples() {
        XCTAssertThrowsError(try LatencyReport.Results(loadMs: nil, firstInferenceMs: nil, latenciesMs: [], peakMemoryBytes: nil))
    }
}
