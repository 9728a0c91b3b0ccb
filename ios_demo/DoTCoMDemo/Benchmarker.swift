import DoTCoMKit
import Foundation

/// Warm-up and iteration counts of one benchmark run.
struct BenchmarkSettings: Equatable {
    var warmup = 10
    var iterations = 50
    var repeats = 1
    var computeUnits: ComputeUnitsChoice = .all
}

/// The benchmarks of the Benchmark screen and the XCTest benchmark target.
///
/// Protocol, the host runners' and Android's: load (timed), one first inference (timed,
/// it includes lazy initialisation; the first of `warmup` untimed runs), then `repeats` x
/// `iterations` timed runs on the same random input. The runs are DoTCoMKit's
/// ``InTurn`` loop, timed with `DispatchTime.uptimeNanoseconds`, i.e. `mach_absolute_time`.
/// Memory is the largest `phys_footprint` seen after loading and after each timed step.
///
/// It never throws: a failure (missing manifest, unregistered backend...) becomes a
/// report with `status: error`, so a batch over many models still yields one file each.
enum Benchmarker {
    /// One model timed alone: ``runInTurn(_:settings:progress:)`` of one.
    static func run(_ model: ModelEntry, settings: BenchmarkSettings,
                    progress: ((Double) -> Void)? = nil) -> LatencyReport {
        runInTurn([model], settings: settings, progress: progress)[0]
    }

    /// `models` loaded together and called in turn (A, B, A, B, ...): a thermal slow
    /// spell of the phone lands on all of them, so their latency ratio holds. One report
    /// per model, in order; with several, each names the others in `protocol.in_turn_with`
    /// and its peak memory holds all of them. One failure stops the group: every member
    /// gets an error report naming the model that failed (its numbers would be a group's
    /// with a member missing).
    static func runInTurn(_ models: [ModelEntry], settings: BenchmarkSettings,
                          progress: ((Double) -> Void)? = nil) -> [LatencyReport] {
        let device = DeviceInfo.reportDevice()
        let repeats = max(settings.repeats, 1)
        let proto = LatencyReport.BenchProtocol(warmup: settings.warmup, iterations: settings.iterations,
                                                repeats: repeats, input: "random")
        let manifests = models.map { try? $0.requireManifest() }
        let artifacts = zip(models, manifests).map { model, manifest in
            manifest.map { LatencyReport.Artifact(manifest: $0, path: model.url.lastPathComponent) }
                ?? ArtifactName.artifact(fromFileName: model.name)
        }
        var engines = [InferenceEngine?](repeating: nil, count: models.count)
        func runtime(_ k: Int) -> LatencyReport.Runtime {
            engines[k]?.runtime ?? fallbackRuntime(models[k], manifest: manifests[k], settings: settings)
        }
        let reports: [LatencyReport]
        do {
            var programs = [() throws -> Void]()
            var loadMs = [Double]()
            var peak = DeviceInfo.physFootprint() ?? 0
            for (k, model) in models.enumerated() {
                do {
                    let m = try model.requireManifest()
                    let e = try EngineFactory.make(for: model, computeUnits: settings.computeUnits)
                    engines[k] = e
                    let shape = m.input.shape
                    let input = randomInput(count: shape.reduce(1, *))
                    loadMs.append(try time { try e.load() }.ms)
                    peak = max(peak, DeviceInfo.physFootprint() ?? 0)
                    programs.append { _ = try e.predict(input, shape: shape) }
                } catch {
                    throw InTurn.ProgramError(index: k, underlying: error)
                }
            }
            let total = repeats * settings.iterations
            let timings = try InTurn.time(programs: programs, warmup: settings.warmup, iterations: settings.iterations,
                                          repeats: repeats, afterStep: { done in
                peak = max(peak, DeviceInfo.physFootprint() ?? 0)
                progress?(Double(done) / Double(max(total, 1)))
            })
            reports = try timings.enumerated().map { k, timing in
                let results = try LatencyReport.Results(loadMs: loadMs[k], firstInferenceMs: timing.firstCallMs,
                                                        latenciesMs: timing.latenciesMs,
                                                        peakMemoryBytes: peak > 0 ? peak : nil)
                return LatencyReport(artifact: artifacts[k], device: device, runtime: runtime(k), protocol: proto,
                                     results: results, delegation: manifests[k]?.delegation)
            }
        } catch {
            let message = InTurn.message(for: error, names: artifacts.map(\.name))
            reports = models.indices.map { k in
                LatencyReport(artifact: artifacts[k], device: device, runtime: runtime(k), protocol: proto,
                              error: message, delegation: manifests[k]?.delegation)
            }
        }
        return LatencyReport.markInTurn(reports)
    }

    /// The runtime block of a model whose engine could not be made (no manifest...).
    private static func fallbackRuntime(_ model: ModelEntry, manifest: Manifest?,
                                        settings: BenchmarkSettings) -> LatencyReport.Runtime {
        model.format == .pte
            ? LatencyReport.Runtime(runner: "ios", executorchVersion: ExecuTorchEngine.runtimeVersion,
                                    computeUnit: manifest?.computeUnit)
            : LatencyReport.Runtime(runner: "coreml", computeUnit: settings.computeUnits.rawValue)
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
