import Foundation

/// One benchmark run of one artifact in one configuration, as
/// `report/schemas/latency-report.v1.schema.json` defines it.
///
/// The iPhone's numbers go into the same `dotcom-mobile report` table as the host's and
/// the Android app's, so this type mirrors the schema field for field (snake_case keys)
/// and the statistics come from ``Statistics``, never from a local formula.
public struct LatencyReport: Codable, Equatable, Sendable {
    public struct Artifact: Codable, Equatable, Sendable {
        public var name: String
        public var path: String?
        public var backend: String
        public var quantization: String
        public var sha256: String?
        public var sizeBytes: Int?
        public var model: String?
        public var task: String?
        public var inputShape: [Int]?

        enum CodingKeys: String, CodingKey {
            case name, path, backend, quantization, sha256, model, task
            case sizeBytes = "size_bytes"
            case inputShape = "input_shape"
        }

        public init(name: String, path: String? = nil, backend: String, quantization: String,
                    sha256: String? = nil, sizeBytes: Int? = nil, model: String? = nil,
                    task: String? = nil, inputShape: [Int]? = nil) {
            self.name = name
            self.path = path
            self.backend = backend
            self.quantization = quantization
            self.sha256 = sha256
            self.sizeBytes = sizeBytes
            self.model = model
            self.task = task
            self.inputShape = inputShape
        }

        /// The artifact as its manifest describes it (name, backend, quantization, sha256...).
        public init(manifest: Manifest, path: String? = nil) {
            self.init(name: manifest.artifact.file, path: path, backend: manifest.backend,
                      quantization: manifest.quantization, sha256: manifest.artifact.sha256,
                      sizeBytes: manifest.artifact.sizeBytes, model: manifest.model,
                      task: manifest.task, inputShape: manifest.input.shape)
        }
    }

    public struct Device: Codable, Equatable, Sendable {
        public var platform: String
        public var os: String
        public var model: String?
        public var cpu: String?
        public var cores: Int?
        public var threads: Int?
        public var thermalState: String?
        public var memoryBytes: Int?

        enum CodingKeys: String, CodingKey {
            case platform, os, model, cpu, cores, threads
            case thermalState = "thermal_state"
            case memoryBytes = "memory_bytes"
        }

        public init(platform: String = "ios", os: String, model: String? = nil, cpu: String? = nil,
                    cores: Int? = nil, threads: Int? = nil, thermalState: String? = nil,
                    memoryBytes: Int? = nil) {
            self.platform = platform
            self.os = os
            self.model = model
            self.cpu = cpu
            self.cores = cores
            self.threads = threads
            self.thermalState = thermalState
            self.memoryBytes = memoryBytes
        }
    }

    public struct Runtime: Codable, Equatable, Sendable {
        /// `ios` for the ExecuTorch engine, `coreml` for the Core ML engine.
        public var runner: String
        public var executorchVersion: String?
        public var version: String?
        public var computeUnit: String?

        enum CodingKeys: String, CodingKey {
            case runner, version
            case executorchVersion = "executorch_version"
            case computeUnit = "compute_unit"
        }

        public init(runner: String, executorchVersion: String? = nil, version: String? = nil,
                    computeUnit: String? = nil) {
            self.runner = runner
            self.executorchVersion = executorchVersion
            self.version = version
            self.computeUnit = computeUnit
        }
    }

    public struct BenchProtocol: Codable, Equatable, Sendable {
        public var warmup: Int
        public var iterations: Int
        public var repeats: Int
        /// `random`, `zeros`, `image` or `bundled`.
        public var input: String
        public var cooldownS: Double?
        public var clock: String?
        /// The other artifacts timed in the same process in turn with this one (see
        /// ``InTurn``), in turn order; nil when timed alone. Set by ``LatencyReport/markInTurn(_:)``.
        public var inTurnWith: [String]?

        enum CodingKeys: String, CodingKey {
            case warmup, iterations, repeats, input, clock
            case cooldownS = "cooldown_s"
            case inTurnWith = "in_turn_with"
        }

        public init(warmup: Int, iterations: Int, repeats: Int = 1, input: String = "random",
                    cooldownS: Double? = nil, clock: String? = "mach_absolute_time", inTurnWith: [String]? = nil) {
            self.warmup = warmup
            self.iterations = iterations
            self.repeats = repeats
            self.input = input
            self.cooldownS = cooldownS
            self.clock = clock
            self.inTurnWith = inTurnWith
        }

        // The schema's `in_turn_with` is a non-empty list or absent (never null, never []):
        // a report timed alone must not claim company.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(warmup, forKey: .warmup)
            try c.encode(iterations, forKey: .iterations)
            try c.encode(repeats, forKey: .repeats)
            try c.encode(input, forKey: .input)
            try c.encodeIfPresent(cooldownS, forKey: .cooldownS)
            try c.encodeIfPresent(clock, forKey: .clock)
            if let names = inTurnWith, !names.isEmpty {
                try c.encode(names, forKey: .inTurnWith)
            }
        }
    }

    public struct Results: Codable, Equatable, Sendable {
        public var loadMs: Double?
        public var firstInferenceMs: Double?
        public var latenciesMs: [Double]
        public var p50Ms: Double
        public var p90Ms: Double
        public var p99Ms: Double
        public var meanMs: Double
        public var trimmedMeanMs: Double
        public var minMs: Double
        public var maxMs: Double
        public var stddevMs: Double
        public var peakMemoryBytes: Int?
        public var outputsVerified: Bool?

        enum CodingKeys: String, CodingKey {
            case loadMs = "load_ms"
            case firstInferenceMs = "first_inference_ms"
            case latenciesMs = "latencies_ms"
            case p50Ms = "p50_ms"
            case p90Ms = "p90_ms"
            case p99Ms = "p99_ms"
            case meanMs = "mean_ms"
            case trimmedMeanMs = "trimmed_mean_ms"
            case minMs = "min_ms"
            case maxMs = "max_ms"
            case stddevMs = "stddev_ms"
            case peakMemoryBytes = "peak_memory_bytes"
            case outputsVerified = "outputs_verified"
        }

        /// Results from raw per-iteration latencies; the statistics are computed here.
        public init(loadMs: Double?, firstInferenceMs: Double?, latenciesMs: [Double],
                    peakMemoryBytes: Int?, outputsVerified: Bool? = nil) throws {
            let s = try Statistics.summarize(latenciesMs)
            self.loadMs = loadMs
            self.firstInferenceMs = firstInferenceMs
            self.latenciesMs = latenciesMs
            self.p50Ms = s.p50
            self.p90Ms = s.p90
            self.p99Ms = s.p99
            self.meanMs = s.mean
            self.trimmedMeanMs = s.trimmedMean
            self.minMs = s.min
            self.maxMs = s.max
            self.stddevMs = s.stddev
            self.peakMemoryBytes = peakMemoryBytes
            self.outputsVerified = outputsVerified
        }

        // The schema requires these keys even when their value is unknown: encode nulls.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(loadMs, forKey: .loadMs)
            try c.encode(firstInferenceMs, forKey: .firstInferenceMs)
            try c.encode(latenciesMs, forKey: .latenciesMs)
            try c.encode(p50Ms, forKey: .p50Ms)
            try c.encode(p90Ms, forKey: .p90Ms)
            try c.encode(p99Ms, forKey: .p99Ms)
            try c.encode(meanMs, forKey: .meanMs)
            try c.encode(trimmedMeanMs, forKey: .trimmedMeanMs)
            try c.encode(minMs, forKey: .minMs)
            try c.encode(maxMs, forKey: .maxMs)
            try c.encode(stddevMs, forKey: .stddevMs)
            try c.encode(peakMemoryBytes, forKey: .peakMemoryBytes)
            try c.encodeIfPresent(outputsVerified, forKey: .outputsVerified)
        }
    }

    public static let schemaName = "latency-report"
    public static let schemaVersion = 1

    public var schema: String = LatencyReport.schemaName
    public var schemaVersion: Int = LatencyReport.schemaVersion
    public var artifact: Artifact
    public var device: Device
    public var runtime: Runtime
    public var benchProtocol: BenchProtocol
    public var results: Results?
    public var delegation: Manifest.Delegation?
    /// `ok` or `error`.
    public var status: String
    public var error: String?
    public var createdAt: String?
    public var source: String?

    enum CodingKeys: String, CodingKey {
        case schema, artifact, device, runtime, results, delegation, status, error, source
        case schemaVersion = "schema_version"
        case benchProtocol = "protocol"
        case createdAt = "created_at"
    }

    /// A successful run.
    public init(artifact: Artifact, device: Device, runtime: Runtime, protocol benchProtocol: BenchProtocol,
                results: Results, delegation: Manifest.Delegation? = nil, createdAt: Date = Date(),
                source: String? = nil) {
        self.artifact = artifact
        self.device = device
        self.runtime = runtime
        self.benchProtocol = benchProtocol
        self.results = results
        self.delegation = delegation
        self.status = "ok"
        self.error = nil
        self.createdAt = LatencyReport.iso8601(createdAt)
        self.source = source
    }

    /// A failed run: the error text is the report's content (missing model, unregistered
    /// backend...), so that a batch of benchmarks still yields one file per artifact.
    public init(artifact: Artifact, device: Device, runtime: Runtime, protocol benchProtocol: BenchProtocol,
                error: String, delegation: Manifest.Delegation? = nil, createdAt: Date = Date()) {
        self.artifact = artifact
        self.device = device
        self.runtime = runtime
        self.benchProtocol = benchProtocol
        self.results = nil
        self.delegation = delegation
        self.status = "error"
        self.error = error.isEmpty ? "unknown error" : error
        self.createdAt = LatencyReport.iso8601(createdAt)
        self.source = nil
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(schema, forKey: .schema)
        try c.encode(schemaVersion, forKey: .schemaVersion)
        try c.encode(artifact, forKey: .artifact)
        try c.encode(device, forKey: .device)
        try c.encode(runtime, forKey: .runtime)
        try c.encode(benchProtocol, forKey: .benchProtocol)
        try c.encode(results, forKey: .results)  // required key: null when nothing was measured
        try c.encodeIfPresent(delegation, forKey: .delegation)
        try c.encode(status, forKey: .status)
        try c.encodeIfPresent(error, forKey: .error)
        try c.encodeIfPresent(createdAt, forKey: .createdAt)
        try c.encodeIfPresent(source, forKey: .source)
    }

    /// Pretty, key-sorted JSON: stable diffs and readable in the share sheet.
    public func jsonData(pretty: Bool = true) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    /// File name by the project's one rule (`report/latency.py: report_filename`):
    /// `<artifact stem>__<runner>__t<threads>.json`, with `<runner>-in-turn` for a report
    /// timed in turn with others, so it sits beside the one timed alone. Core ML runs of
    /// one model differ only by compute units, so those get `__<unit>` before `.json`
    /// rather than overwriting each other.
    public var suggestedFileName: String {
        let stem = (artifact.name as NSString).deletingPathExtension
        let runner = runtime.runner + (timedInTurn ? "-in-turn" : "")
        var name = "\(stem)__\(runner)__t\(device.threads ?? 0)"
        if runtime.runner == "coreml", let unit = runtime.computeUnit {
            name += "__\(unit.lowercased())"
        }
        return name + ".json"
    }

    static func iso8601(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: date)
    }
}
