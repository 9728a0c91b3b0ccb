// Linux stand-ins for the app types that need Apple frameworks (ExecuTorch, Core ML,
// Mach). check.sh type-checks the app's portable files (ModelEntry, InferenceEngine,
// Benchmarker) against these, so a type error there fails on Linux, not first in Xcode.
// Signatures mirror DoTCoMDemo/{ExecuTorchEngine,CoreMLEngine,DeviceInfo}.swift; the
// bodies do nothing and are never run.
import DoTCoMKit
import Foundation

final class ExecuTorchEngine: InferenceEngine {
    static let runtimeVersion = "1.5.1"
    init(modelURL: URL, manifest: Manifest) {}
    var displayName: String { "" }
    var runtime: LatencyReport.Runtime { .init(runner: "ios") }
    func load() throws {}
    func predict(_ input: [Float], shape: [Int]) throws -> [Float] { [] }
}

final class CoreMLEngine: InferenceEngine {
    init(modelURL: URL, manifest: Manifest, computeUnits: ComputeUnitsChoice) {}
    var displayName: String { "" }
    var runtime: LatencyReport.Runtime { .init(runner: "coreml") }
    func load() throws {}
    func predict(_ input: [Float], shape: [Int]) throws -> [Float] { [] }
}

enum DeviceInfo {
    static var modelIdentifier: String { "" }
    static var thermalState: String { "" }
    static var osVersion: String { "" }
    static func physFootprint() -> Int? { nil }
    static func reportDevice(threads: Int = 0) -> LatencyReport.Device { .init(os: "") }
}
