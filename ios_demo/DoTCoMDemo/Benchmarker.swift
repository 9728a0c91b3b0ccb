import DoTCoMKit
import Foundation

/// Warm-up and iteration counts of one benchmark run.
struct BenchmarkSettings: Equatable {
    var warmup = 10
    var iterations = 50
    var repeats = 1
    var computeUnits: ComputeUnitsChoice = .all
}

/// The benchmark loop shared by the Benchmark screen and the XCTest benchmark target.
///
/// Protocol, in the same order as the host runners: load (timed), one first inference
/// (timed, it includes lazy initialisation), `warmup` untimed runs, then `repeats` x
/// `iterations` timed runs on the same random input. Time comes from
/// `DispatchTime.uptimeNanoseconds`, i.e. `mach_absolute_time`. Memory is the largest
/// `phys_footprint` seen after loading and after each timed run.
///
/// It never throws: a failure (missing manifest, unregistered backend...) becomes a
/// report with `status: error`, so a batch over many models still yields one file each.
enum Benchmarker {
    static func run(_ model: ModelEntry, settings: BenchmarkSettings,
                    progress: ((Double) -> Void)? = nil) -> LatencyReport {
        let device = DeviceInfo.reportDevice()
        let proto = LatencyReport.BenchProtocol(warmup: settings.warmup, iterations: settings.iterations,
                                                repeats: max(settings.repeats, 1), input: "random")
        let manifest = try? model.requireManifest()
        let artifact = manifest.map { LatencyReport.Artifact(manifest: $0, path: model.url.lastPathComponent) }
            ?? ArtifactName.artifact(fromFileName: model.name)
        var engine: InferenceEngine?
        do {
            let m = try model.requireManifest()
            let e = try EngineFactory.make(for: model, computeUnits: settings.computeUnits)
            engine = e
            let shape = m.input.shape
            let input = randomInput(count: shape.reduce(1, *))

            var peak = DeviceInfo.physFootprint() ?? 0
            let loadMs = try time { try e.load() }.ms
            peak = max(peak, DeviceInfo.physFootprint() ?? 0)
            let firstMs = try time { _ = try e.predict(input, shape: shape) }.ms
            for _ in 0..<settings.warmup {
                _ = try e.predict(input, shape: shape)
            }
            var latencies = [Double]()
            let total = max(settings.repeats, 1) * settings.iterations
            latencies.reserveCapacity(total)
            for _ in 0..<max(settings.repeats, 1) {
                for _ in 0..<settings.iterations {
                    latencies.append(try time { _ = try e.predict(input, shape: shape) }.ms)
                    peak = max(peak, DeviceInfo.physFootprint() ?? 0)
                    progress?(Double(latencies.count) / Double(max(total, 1)))
                }
            }
            guard !latencies.isEmpty else { throw DoTCoMError.benchmark("iterations must be at least 1") }
            let results = try LatencyReport.Results(loadMs: loadMs, firstInferenceMs: firstMs, latenciesMs: latencies,
                                                    peakMemoryBytes: peak > 0 ? peak : nil)
            return LatencyReport(artifact: artifact, device: device, runtime: e.runtime, protocol: proto,
                                 results: results, delegation: m.delegation)
        } catch {
            let runtime = engine?.runtime ?? LatencyReport.Runtime(
                runner: model.format == .pte ? "ios" : "coreml",
                executorchVersion: model.format == .pte ? ExecuTorchEngine.runtimeVersion : nil,
                computeUnit: model.format == .pte ? manifest?.computeUnit : settings.computeUnits.rawValue)
            return LatencyReport(artifact: artifact, device: device, runtime: runtime, protocol: proto,
                                 error: error.localizedDescription, delegation: manifest?.delegation)
        }
    }

    /// Elapsed milliseconds of `body` on the monotonic clock.
    @discardableResult
    static func time(_ body: () throws -> Void) rethrows -> (ms: Double, ns: UInt64) {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        let ns = DispatchTime.now().uptimeNanoseconds - start
        return (Double(ns) / 1e6, ns)
    }

    /// Deterministic pseudo-random input in [-2, 2), roughly the range of normalised pixels.
    static func randomInput(count: Int, seed: UInt64 = 0x5EED) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 24) * 4 - 2
        }
    }
}

/// Artifact fields from a file name `<model>_<backend>_<quant>.pte`, for error reports
/// about models whose manifest could not be read.
enum ArtifactName {
    static func artifact(fromFileName name: String) -> LatencyReport.Artifact {
        let stem = (name as NSString).deletingPathExtension
        let parts = stem.split(separator: "_").map(String.init)
        let quant = parts.count >= 3 ? parts[parts.count - 1] : "unknown"
        let backend = parts.count >= 3 ? parts[parts.count - 2]
            : ((name as NSString).pathExtension == "pte" ? "unknown" : "mlpackage")
        return LatencyReport.Artifact(name: name, backend: backend, quantization: quant)
    }
}

/// Reports written to Documents/Reports, one file per artifact and runner.
enum ReportStore {
    static var folder: URL {
        FileManager.default.urls(for: .documentDirectory, in: .userDomainMask)[0].appendingPathComponent("Reports")
    }

    /// Writes `report` atomically (temporary file, then rename) and returns its URL.
    @discardableResult
    static func write(_ report: LatencyReport, to directory: URL = folder) throws -> URL {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let url = directory.appendingPathComponent(report.suggestedFileName)
        try report.jsonData().write(to: url, options: .atomic)
        return url
    }
}
