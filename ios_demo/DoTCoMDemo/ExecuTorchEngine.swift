import DoTCoMKit
import ExecuTorch
import Foundation

/// Runs a `.pte` with the ExecuTorch runtime (XNNPACK or Core ML delegate inside).
///
/// Backends and kernels register themselves from static initialisers, which the linker
/// drops unless the app links with `-all_load` (see the project's OTHER_LDFLAGS). When
/// that is missing, loading fails with an "unregistered backend" style error: the
/// message says so instead of crashing.
final class ExecuTorchEngine: InferenceEngine {
    /// The ExecuTorch release the Swift package is pinned to (branch swiftpm-1.5.1).
    static let runtimeVersion = "1.5.1"

    private let modelURL: URL
    private let manifest: Manifest
    private var module: Module?

    init(modelURL: URL, manifest: Manifest) {
        self.modelURL = modelURL
        self.manifest = manifest
    }

    var displayName: String {
        manifest.backend == "coreml" ? "ExecuTorch (Core ML delegate)" : "ExecuTorch (\(manifest.backend))"
    }

    var runtime: LatencyReport.Runtime {
        .init(runner: "ios", executorchVersion: Self.runtimeVersion, computeUnit: manifest.computeUnit)
    }

    func load() throws {
        guard FileManager.default.fileExists(atPath: modelURL.path) else {
            throw DoTCoMError.model("\(modelURL.lastPathComponent): model file not found")
        }
        let module = Module(filePath: modelURL.path)
        do {
            try module.load("forward")
        } catch {
            throw DoTCoMError.model(
                "\(modelURL.lastPathComponent): ExecuTorch could not load 'forward' (\(error.localizedDescription)). "
                + "If the backend '\(manifest.backend)' is unregistered, link backend_\(manifest.backend) with -all_load.")
        }
        self.module = module
    }

    func predict(_ input: [Float], shape: [Int]) throws -> [Float] {
        guard let module else { throw DoTCoMError.model("model not loaded") }
        guard manifest.input.dtype == "float32" else {
            throw DoTCoMError.model("input dtype \(manifest.input.dtype) is not supported by the ExecuTorch engine; export with a float32 input")
        }
        let tensor = Tensor<Float>(input, shape: shape)
        let output: AnyTensor = try module.forward(tensor)
        guard let floats: Tensor<Float> = output.asTensor() else {
            throw DoTCoMError.model("output is \(output.dataType), expected float32")
        }
        return floats.scalars()
    }
}
