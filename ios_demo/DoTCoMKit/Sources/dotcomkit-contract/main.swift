// dotcomkit-contract: DoTCoMKit's reading and writing, exposed for the Python tests.
//
// The iOS app can only be built on a Mac, but what it reads (manifests) and writes
// (latency reports) is a contract with the Python side. This tool runs the app's own
// DoTCoMKit code on Linux so that tests/test_ios_contract.py can check both directions:
//
//   dotcomkit-contract manifest   MANIFEST                 -> the decoded manifest as JSON
//   dotcomkit-contract report     MANIFEST OUT.json [--latencies 1.5,2.0,...] [--load-ms X]
//                                 [--first-ms X] [--peak-bytes N] [--error TEXT]
//                                 [--runner ios|coreml] [--compute-unit UNIT]
//   dotcomkit-contract preprocess MANIFEST IMAGE.rgba WIDTH HEIGHT OUT.f32
//                                 -> the input tensor, little-endian float32, CHW
//   dotcomkit-contract in-turn    OUT_DIR MANIFEST MANIFEST... [--costs MS,MS,...]
//                                 [--fail K] [--warmup N] [--iterations N] [--repeats N]
//                                 -> one report per manifest in OUT_DIR, named as the app
//                                 names them; the file names on stdout, one a line
//
// `in-turn` runs DoTCoMKit's InTurn loop on fake programs (program k costs costs[k] ms a
// call on a fake clock that slows down by quarters in a periodic "slow spell", the same
// for every program of a step) and writes the reports the app would write: each names
// the others in protocol.in_turn_with. `--fail K` makes program K throw on its first call:
// every member then gets an error report naming it.
//
// Exit status 1 with one line on stderr for any error.
import DoTCoMKit
import Foundation

struct UsageError: Error, CustomStringConvertible {
    let description: String
}

func option(_ args: [String], _ name: String) -> String? {
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}

func writeAtomically(_ data: Data, to path: String) throws {
    // Data.write(options: .atomic) writes a temporary file and renames it into place.
    try data.write(to: URL(fileURLWithPath: path), options: .atomic)
}

func run(_ args: [String]) throws {
    guard let command = args.first else {
        throw UsageError(description: "usage: dotcomkit-contract manifest|report|preprocess|in-turn ...")
    }
    let rest = Array(args.dropFirst())
    switch command {
    case "manifest":
        guard let path = rest.first else { throw UsageError(description: "usage: manifest MANIFEST") }
        let manifest = try Manifest.load(from: URL(fileURLWithPath: path))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        FileHandle.standardOutput.write(try encoder.encode(manifest))
        FileHandle.standardOutput.write("\n".data(using: .utf8)!)

    case "report":
        guard rest.count >= 2 else { throw UsageError(description: "usage: report MANIFEST OUT.json [options]") }
        let manifest = try Manifest.load(from: URL(fileURLWithPath: rest[0]))
        let runner = option(rest, "--runner") ?? "ios"
        let device = contractDevice()
        let runtime = LatencyReport.Runtime(runner: runner, executorchVersion: manifest.executorchVersion,
                                            computeUnit: option(rest, "--compute-unit"))
        let artifact = LatencyReport.Artifact(manifest: manifest, path: rest[0])
        let report: LatencyReport
        if let error = option(rest, "--error") {
            report = LatencyReport(artifact: artifact, device: device, runtime: runtime,
                                   protocol: .init(warmup: 0, iterations: 0), error: error,
                                   delegation: manifest.delegation)
        } else {
            let latencies = try (option(rest, "--latencies") ?? "").split(separator: ",").map { s -> Double in
                guard let v = Double(s.trimmingCharacters(in: .whitespaces)) else {
                    throw UsageError(description: "--latencies: '\(s)' is not a number")
                }
                return v
            }
            let results = try LatencyReport.Results(
                loadMs: option(rest, "--load-ms").flatMap(Double.init),
                firstInferenceMs: option(rest, "--first-ms").flatMap(Double.init),
                latenciesMs: latencies,
                peakMemoryBytes: option(rest, "--peak-bytes").flatMap { Int($0) })
            report = LatencyReport(artifact: artifact, device: device, runtime: runtime,
                                   protocol: .init(warmup: 3, iterations: latencies.count),
                                   results: results, delegation: manifest.delegation)
        }
        try writeAtomically(try report.jsonData(), to: rest[1])

    case "preprocess":
        guard rest.count == 5, let width = Int(rest[2]), let height = Int(rest[3]) else {
            throw UsageError(description: "usage: preprocess MANIFEST IMAGE.rgba WIDTH HEIGHT OUT.f32")
        }
        let manifest = try Manifest.load(from: URL(fileURLWithPath: rest[0]))
        let bytes = try Data(contentsOf: URL(fileURLWithPath: rest[1]))
        let image = try RGBAImage(width: width, height: height, pixels: [UInt8](bytes))
        let tensor = try Preprocessor.tensor(from: image, preprocessing: manifest.preprocessing)
        var data = Data(capacity: tensor.count * 4)
        for v in tensor {
            withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) }
        }
        try writeAtomically(data, to: rest[4])

    case "in-turn":
        try inTurn(rest)

    default:
        throw UsageError(description: "unknown command '\(command)' (manifest, report, preprocess, in-turn)")
    }
}

/// The device block of every report this tool writes (a phone that does not exist).
func contractDevice() -> LatencyReport.Device {
    LatencyReport.Device(
        platform: "ios", os: "iOS 17.0", model: "contract-test", cpu: nil,
        cores: ProcessInfo.processInfo.activeProcessorCount, threads: 0,
        thermalState: "nominal", memoryBytes: Int(ProcessInfo.processInfo.physicalMemory))
}

/// Options with a value, for the arguments that come before the first of them.
let inTurnOptions: Set<String> = ["--costs", "--fail", "--warmup", "--iterations", "--repeats"]

func inTurn(_ rest: [String]) throws {
    let positional = Array(rest.prefix { !inTurnOptions.contains($0) })
    guard positional.count >= 3 else {
        throw UsageError(description: "usage: in-turn OUT_DIR MANIFEST MANIFEST... [--costs MS,...] [--fail K]")
    }
    let outDir = URL(fileURLWithPath: positional[0])
    let manifests = try positional.dropFirst().map { try Manifest.load(from: URL(fileURLWithPath: $0)) }
    func integer(_ name: String, _ value: Int) throws -> Int {
        guard let raw = option(rest, name) else { return value }
        guard let v = Int(raw) else { throw UsageError(description: "\(name): '\(raw)' is not an integer") }
        return v
    }
    let costs = try (option(rest, "--costs") ?? manifests.indices.map { "\(2.5 * Double($0 + 1))" }.joined(separator: ","))
        .split(separator: ",").map { s -> Double in
            guard let v = Double(s), v > 0 else { throw UsageError(description: "--costs: '\(s)' is not a positive number") }
            return v
        }
    guard costs.count == manifests.count else {
        throw UsageError(description: "--costs: \(costs.count) values for \(manifests.count) programs")
    }
    let failing = try integer("--fail", -1)
    let warmup = try integer("--warmup", 2)
    let iterations = try integer("--iterations", 8)
    let repeats = try integer("--repeats", 1)

    // Program k costs costs[k] x (1, 1.25, 1.5 or 1.75, by the step's number): a slow
    // spell that every program of the step meets alike. Quarters keep the ns exact.
    final class FakeClock { var ns: UInt64 = 0; var step = 0 }
    let clock = FakeClock()
    let programs: [() throws -> Void] = costs.enumerated().map { k, cost in
        {
            if k == failing { throw DoTCoMError.model("forward failed: backend 'XnnpackBackend' is not registered") }
            if k == 0 { clock.step += 1 }
            clock.ns += UInt64(cost * (1 + 0.25 * Double(clock.step % 4)) * 1e6)
        }
    }
    let proto = LatencyReport.BenchProtocol(warmup: warmup, iterations: iterations, repeats: repeats)
    let runtimes = manifests.map { m in
        m.artifact.format == "pte"
            ? LatencyReport.Runtime(runner: "ios", executorchVersion: m.executorchVersion)
            : LatencyReport.Runtime(runner: "coreml", computeUnit: "ALL")
    }
    let artifacts = manifests.map { LatencyReport.Artifact(manifest: $0) }
    let device = contractDevice()
    var reports: [LatencyReport]
    do {
        let timings = try InTurn.time(programs: programs, warmup: warmup, iterations: iterations, repeats: repeats,
                                      clock: { clock.ns })
        reports = try zip(manifests.indices, timings).map { k, t in
            let results = try LatencyReport.Results(loadMs: nil, firstInferenceMs: t.firstCallMs,
                                                    latenciesMs: t.latenciesMs, peakMemoryBytes: nil)
            return LatencyReport(artifact: artifacts[k], device: device, runtime: runtimes[k], protocol: proto,
                                 results: results, delegation: manifests[k].delegation)
        }
    } catch let error as InTurn.ProgramError {
        let message = InTurn.message(for: error, names: artifacts.map(\.name))
        reports = manifests.indices.map { k in
            LatencyReport(artifact: artifacts[k], device: device, runtime: runtimes[k], protocol: proto,
                          error: message, delegation: manifests[k].delegation)
        }
    }
    try FileManager.default.createDirectory(at: outDir, withIntermediateDirectories: true)
    for report in LatencyReport.markInTurn(reports) {
        let url = outDir.appendingPathComponent(report.suggestedFileName)
        try writeAtomically(try report.jsonData(), to: url.path)
        print(url.lastPathComponent)
    }
}

do {
    try run(Array(CommandLine.arguments.dropFirst()))
} catch {
    FileHandle.standardError.write("error: \(error)\n".data(using: .utf8)!)
    exit(1)
}
