import CoreML
import DoTCoMKit
import Foundation

/// Runs a standalone Core ML model (`.mlpackage`, compiled on first load, or `.mlmodelc`)
/// with selectable compute units, for a like-for-like comparison with ExecuTorch.
final class CoreMLEngine: InferenceEngine {
    private let modelURL: URL
    private let manifest: Manifest
    private let computeUnits: ComputeUnitsChoice
    private var model: MLModel?
    private var inputName = ""
    private var outputName = ""

    init(modelURL: URL, manifest: Manifest, computeUnits: ComputeUnitsChoice) {
        self.modelURL = modelURL
        self.manifest = manifest
        self.computeUnits = computeUnits
    }

    var displayName: String { "Core ML (\(computeUnits.label))" }

    var runtime: LatencyReport.Runtime {
        .init(runner: "coreml", version: DeviceInfo.osVersion,
              computeUnit: computeUnits.rawValue)
    }

    func load() throws {
        guard FileManager.default.fileExists(atPath: modelURL.path) else {
            throw DoTCoMError.model("\(modelURL.lastPathComponent): model not found")
        }
        let config = MLModelConfiguration()
        switch computeUnits {
        case .all: config.computeUnits = .all
        case .cpuAndNeuralEngine: config.computeUnits = .cpuAndNeuralEngine
        case .cpuOnly: config.computeUnits = .cpuOnly
        }
        do {
            // Compilation is part of loading an .mlpackage on device; it is what users pay.
            let compiled = modelURL.pathExtension == "mlmodelc" ? modelURL : try MLModel.compileModel(at: modelURL)
            let model = try MLModel(contentsOf: compiled, configuration: config)
            let inputs = model.modelDescription.inputDescriptionsByName
            // The manifest names the input; fall back to the model's only input.
            let named: String? = inputs[manifest.input.name] != nil ? manifest.input.name : nil
            guard let input = named ?? inputs.keys.sorted().first else {
                throw DoTCoMError.model("the Core ML model has no inputs")
            }
            let outputs = model.modelDescription.outputDescriptionsByName
            let arrays = outputs.filter { $0.value.type == .multiArray }.keys.sorted()
            let dictionaries = outputs.filter { $0.value.type == .dictionary }.keys.sorted()
            guard let output = arrays.first ?? dictionaries.first else {
                throw DoTCoMError.model("the Core ML model has no array or dictionary output")
            }
            self.model = model
            self.inputName = input
            self.outputName = output
        } catch let error as DoTCoMError {
            throw error
        } catch {
            throw DoTCoMError.model("\(modelURL.lastPathComponent): Core ML could not load it (\(error.localizedDescription))")
        }
    }

    func predict(_ input: [Float], shape: [Int]) throws -> [Float] {
        guard let model else { throw DoTCoMError.model("model not loaded") }
        let array = try MLMultiArray(shape: shape.map { NSNumber(value: $0) }, dataType: .float32)
        guard array.count == input.count else {
            throw DoTCoMError.model("input has \(input.count) values, the shape \(shape) needs \(array.count)")
        }
        array.withUnsafeMutableBufferPointer(ofType: Float.self) { buffer, _ in
            // A freshly allocated MLMultiArray is contiguous (row-major), like the NCHW input.
            _ = buffer.initialize(from: input)
        }
        let features = try MLDictionaryFeatureProvider(dictionary: [inputName: MLFeatureValue(multiArray: array)])
        let result = try model.prediction(from: features)
        guard let value = result.featureValue(for: outputName) else {
            throw DoTCoMError.model("output '\(outputName)' missing from the prediction")
        }
        if let out = value.multiArrayValue {
            return Self.floats(out)
        }
        // A classifier exported with class labels (`dotcom-mobile export --target mlpackage`):
        // probabilities keyed by label, returned in label order (manifest kind `probabilities`).
        let scores = value.dictionaryValue
        return manifest.labels.enumerated().map { index, label in
            (scores[label] ?? scores[index as NSNumber])?.floatValue ?? -.infinity
        }
    }

    /// All elements of `array` in row-major order, whatever its strides and data type.
    static func floats(_ array: MLMultiArray) -> [Float] {
        let shape = array.shape.map(\.intValue)
        let strides = array.strides.map(\.intValue)
        var out = [Float]()
        out.reserveCapacity(array.count)
        var index = [Int](repeating: 0, count: shape.count)
        for _ in 0..<array.count {
            let offset = zip(index, strides).reduce(0) { $0 + $1.0 * $1.1 }
            switch array.dataType {
            case .float32: out.append(array.dataPointer.assumingMemoryBound(to: Float.self)[offset])
            case .double: out.append(Float(array.dataPointer.assumingMemoryBound(to: Double.self)[offset]))
            case .int32: out.append(Float(array.dataPointer.assumingMemoryBound(to: Int32.self)[offset]))
            // float16 and the rest through NSNumber (Float16 is unavailable on x86 simulators).
            default: out.append(array[offset].floatValue)
            }
            // Advance the multi-index, last dimension fastest.
            var d = shape.count - 1
            while d >= 0 {
                index[d] += 1
                if index[d] < shape[d] { break }
                index[d] = 0
                d -= 1
            }
        }
        return out
    }
}
