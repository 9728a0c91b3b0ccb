import DoTCoMKit
import Foundation
import XCTest

/// The repository root, found from this file's path (the package lives in ios_demo/DoTCoMKit).
let repoRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent()  // DoTCoMKitTests
    .deletingLastPathComponent()  // Tests
    .deletingLastPathComponent()  // DoTCoMKit
    .deletingLastPathComponent()  // ios_demo
    .deletingLastPathComponent()

final class StatisticsTests: XCTestCase {
    struct Vectors: Decodable {
        struct Case: Decodable {
            let name: String
            let samples: [Double]
            let expected: [String: Double]
        }
        let tolerance_rel: Double
        let cases: [Case]
    }

    /// Every case of report/schemas/stats_vectors.json, the vectors shared with Python,
    /// C++ and Kotlin, within their relative tolerance.
    func testReproducesSharedVectors() throws {
        let url = repoRoot.appendingPathComponent("report/schemas/stats_vectors.json")
        let vectors = try JSONDecoder().decode(Vectors.self, from: Data(contentsOf: url))
        XCTAssertGreaterThanOrEqual(vectors.cases.count, 5)
        for c in vectors.cases {
            let got = try Statistics.summarize(c.samples).bySchemaKey
            XCTAssertEqual(Set(got.keys), Set(c.expected.keys), c.name)
            for (key, want) in c.expected {
                let have = try XCTUnwrap(got[key])
                let tol = vectors.tolerance_rel * max(abs(want), 1e-300)
                XCTAssertEqual(have, want, accuracy: tol, "\(c.name).\(key)")
            }
        }
    }

    func testPercentileInterpolatesBetweenClosestRanks() throws {
        XCTAssertEqual(try Statistics.percentile([1, 2, 3, 4], 50), 2.5)
        XCTAssertEqual(try Statistics.percentile([4, 1, 3, 2], 0), 1)
        XCTAssertEqual(try Statistics.percentile([4, 1, 3, 2], 100), 4)
        XCTAssertEqual(try Statistics.percentile([0, 10], 90), 9, accuracy: 1e-12)
    }

    func testTrimmedMeanDropsTenPercentFromEachEnd() throws {
        // n = 10: one sample dropped from each end, the outliers 100 and -100 go.
        let xs: [Double] = [100, 1, 2, 3, 4, 5, 6, 7, 8, -100]
        XCTAssertEqual(try Statistics.trimmedMean(xs), 4.5)
        // n = 9: floor(0.9) = 0, nothing dropped.
        XCTAssertEqual(try Statistics.trimmedMean([1, 2, 3, 4, 5, 6, 7, 8, 90]), 14)
    }

    func testRejectsEmptyAndOutOfRange() {
        XCTAssertThrowsError(try Statistics.summarize([])) { error in
            XCTAssertEqual(error as? Statistics.StatisticsError, .empty)
        }
        XCTAssertThrowsError(try Statistics.percentile([1], 101))
        XCTAssertThrowsError(try Statistics.percentile([1], -1))
    }
}
