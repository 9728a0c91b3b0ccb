import Foundation

/// The manifest written beside every exported artifact (`export/schemas/manifest.v1.schema.json`).
///
/// The app never guesses how to feed a model: input shape, preprocessing and labels all
/// come from here, so a model exported at 224x224 with other normalisation just works.
/// Only the fields the app uses are decoded; unknown fields are ignored, required ones
/// are checked by ``validate()`` with a message naming the field.
public struct Manifest: Codable, Equatable, Sendable {
    public struct Artifact: Codable, Equatable, Sendable {
        public var file: String
        public var format: String
        public var sizeBytes: Int
        public var sha256: String

        enum CodingKeys: String, CodingKey {
            case file, format, sha256
            case sizeBytes = "size_bytes"
        }
    }

    public struct Input: Codable, Equatable, Sendable {
        public var name: String
        public var shape: [Int]
        public var layout: String
        public var dtype: String
        public var color: String?
    }

    public struct Preprocessing: Codable, Equatable, Sendable {
        public var resize: Int
        /// `[height, width]` of the center crop.
        public var crop: [Int]
        public var interpolation: Interpolation
        public var mean: [Double]
        public var std: [Double]
        public var cropPct: Double?

        enum CodingKeys: String, CodingKey {
            case resize, crop, interpolation, mean, std
            case cropPct = "crop_pct"
        }

        public init(resize: Int, crop: [Int], interpolation: Interpolation, mean: [Double],
                    std: [Double], cropPct: Double? = nil) {
            self.resize = resize
            self.crop = crop
            self.interpolation = interpolation
            self.mean = mean
            self.std = std
            self.cropPct = cropPct
        }
    }

    public enum Interpolation: String, Codable, Sendable {
        case bilinear, bicubic, nearest
    }

    public struct Output: Codable, Equatable, Sendable {
        public var name: String
        public var shape: [Int]
        public var kind: String
    }

    public struct Delegation: Codable, Equatable, Sendable {
        public var delegatedNodes: Int
        public var totalNodes: Int
        public var fraction: Double
        public var partitions: Int
        public var nonDelegatedOps: [String: Int]

        enum CodingKeys: String, CodingKey {
            case fraction, partitions
            case delegatedNodes = "delegated_nodes"
            case totalNodes = "total_nodes"
            case nonDelegatedOps = "non_delegated_ops"
        }
    }

    public static let schemaName = "dotcom-mobile/manifest"
    public static let schemaVersion = 1

    public var schema: String
    public var schemaVersion: Int
    public var artifact: Artifact
    public var model: String
    public var task: String
    public var numClasses: Int
    public var input: Input
    public var preprocessing: Preprocessing
    public var outputs: [Output]
    public var labels: [String]
    public var backend: String
    public var computeUnit: String?
    public var quantization: String
    public var delegation: Delegation?
    public var versions: [String: String?]
    public var createdAt: String?

    enum CodingKeys: String, CodingKey {
        case schema, artifact, model, task, input, preprocessing, outputs, labels, backend,
             quantization, delegation, versions
        case schemaVersion = "schema_version"
        case numClasses = "num_classes"
        case computeUnit = "compute_unit"
        case createdAt = "created_at"
    }

    /// Whether the first output already holds probabilities (kind `probabilities`), so
    /// top-k must not apply softmax a second time.
    public var outputsProbabilities: Bool { outputs.first?.kind == "probabilities" }

    /// Input height and width (NCHW).
    public var inputSize: (height: Int, width: Int) { (input.shape[2], input.shape[3]) }

    /// ExecuTorch's version that produced the artifact, when recorded.
    public var executorchVersion: String? { versions["executorch"] ?? nil }

    /// Decodes and validates a manifest; errors name the file and the field.
    public static func load(from url: URL) throws -> Manifest {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw DoTCoMError.manifest("\(url.lastPathComponent): cannot read the manifest")
        }
        return try decode(data, source: url.lastPathComponent)
    }

    public static func decode(_ data: Data, source: String = "manifest") throws -> Manifest {
        let manifest: Manifest
        do {
            manifest = try JSONDecoder().decode(Manifest.self, from: data)
        } catch let DecodingError.keyNotFound(key, context) {
            throw DoTCoMError.manifest("\(source): missing field \(path(context.codingPath + [key]))")
        } catch let DecodingError.typeMismatch(_, context) {
            throw DoTCoMError.manifest("\(source): wrong type at \(path(context.codingPath))")
        } catch let DecodingError.valueNotFound(_, context) {
            throw DoTCoMError.manifest("\(source): null at \(path(context.codingPath))")
        } catch let DecodingError.dataCorrupted(context) {
            let where_ = context.codingPath.isEmpty ? "" : " at \(path(context.codingPath))"
            throw DoTCoMError.manifest("\(source): not a valid manifest\(where_)")
        }
        try manifest.validate(source: source)
        return manifest
    }

    /// The constraints of the schema the app relies on (Codable checks only presence and types).
    public func validate(source: String = "manifest") throws {
        func fail(_ message: String) -> DoTCoMError { .manifest("\(source): \(message)") }
        guard schema == Manifest.schemaName else { throw fail("schema is '\(schema)', expected '\(Manifest.schemaName)'") }
        guard schemaVersion == Manifest.schemaVersion else {
            throw fail("schema_version \(schemaVersion) is not supported (this app reads \(Manifest.schemaVersion))")
        }
        guard input.shape.count == 4, input.shape.allSatisfy({ $0 >= 1 }) else {
            throw fail("input.shape must be 4 positive integers (NCHW), got \(input.shape)")
        }
        guard input.layout == "NCHW" else { throw fail("input.layout '\(input.layout)' is not NCHW") }
        guard input.shape[1] == 3 else { throw fail("input has \(input.shape[1]) channels, expected 3 (RGB)") }
        guard ["float32", "float16"].contains(input.dtype) else { throw fail("input.dtype '\(input.dtype)' is not float32 or float16") }
        let p = preprocessing
        guard p.resize >= 1 else { throw fail("preprocessing.resize must be >= 1") }
        guard p.crop.count == 2, p.crop.allSatisfy({ $0 >= 1 }) else { throw fail("preprocessing.crop must be [height, width]") }
        guard p.crop == [input.shape[2], input.shape[3]] else {
            throw fail("preprocessing.crop \(p.crop) does not match the input's \(input.shape[2])x\(input.shape[3])")
        }
        guard p.mean.count == 3, p.std.count == 3 else { throw fail("preprocessing.mean and std need 3 values") }
        guard p.std.allSatisfy({ $0 > 0 }) else { throw fail("preprocessing.std must be > 0") }
        guard numClasses >= 1 else { throw fail("num_classes must be >= 1") }
        guard labels.isEmpty || labels.count == numClasses else {
            throw fail("\(labels.count) labels for \(numClasses) classes")
        }
        guard !outputs.isEmpty else { throw fail("outputs is empty") }
    }

    /// The label of class `index`, or `class <index>` when the manifest has none.
    public func label(_ index: Int) -> String {
        index >= 0 && index < labels.count ? labels[index] : "class \(index)"
    }

    private static func path(_ keys: [CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            .joined(separator: ".")
            .replacingOccurrences(of: ".[", with: "[")
    }
}

/// One-line errors the app shows to the user instead of crashing.
public enum DoTCoMError: Error, Equatable, CustomStringConvertible, LocalizedError {
    case manifest(String)
    case model(String)
    case image(String)
    case benchmark(String)

    public var description: String {
        switch self {
        case .manifest(let m), .model(let m), .image(let m), .benchmark(let m): return m
        }
    }

    public var errorDescription: String? { description }
}
