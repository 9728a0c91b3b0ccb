import DoTCoMKit
import Foundation

/// One way of running a model. The screens and the benchmark only see this protocol,
/// so ExecuTorch and Core ML are measured by the same loop on the same input.
protocol InferenceEngine: AnyObject {
    /// Short name shown in the UI, e.g. "ExecuTorch" or "Core ML (CPU only)".
    var displayName: String { get }
    /// The report's `runtime` block (runner `ios` for ExecuTorch, `coreml` for Core ML).
    var runtime: LatencyReport.Runtime { get }
    /// Loads the model; expensive, timed separately as the report's `load_ms`.
    func load() throws
    /// Runs one inference on a float32 NCHW tensor and returns the first output, flattened.
    func predict(_ input: [Float], shape: [Int]) throws -> [Float]
}

/// Core ML compute units the app offers (the values of `MLComputeUnits` users compare).
enum ComputeUnitsChoice: String, CaseIterable, Identifiable {
    case all = "ALL"
    case cpuAndNeuralEngine = "CPU_AND_NE"
    case cpuOnly = "CPU_ONLY"

    var id: String { rawValue }

    var label: String {
        switch self {
        case .all: return "All"
        case .cpuAndNeuralEngine: return "CPU + Neural Engine"
        case .cpuOnly: return "CPU only"
        }
    }
}

enum EngineFactory {
    /// The engine for `model`: ExecuTorch for `.pte`, Core ML for `.mlpackage`/`.mlmodelc`.
    static func make(for model: ModelEntry, computeUnits: ComputeUnitsChoice) throws -> InferenceEngine {
        let manifest = try model.requireManifest()
        switch model.format {
        case .pte:
            return ExecuTorchEngine(modelURL: model.url, manifest: manifest)
        case .mlpackage, .mlmodelc:
            return CoreMLEngine(modelURL: model.url, manifest: manifest, computeUnits: computeUnits)
        }
    }
}
