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
        throw UsageError(description: "usage: dotcomkit-contract manifest|report|preprocess ...")
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
        let device = LatencyReport.Device(
            platform: "ios", os: "iOS 17.0", model: "contract-test", cpu: nil,
            cores: ProcessInfo.processInfo.activeProcessorCount, threads: 0,
            thermalState: "nominal", memoryBytes: Int(ProcessInfo.processInfo.physicalMemory))
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

    default:
        throw UsageError(description: "unknown command '\(command)' (manifest, report, preprocess)")
    }
}

do {
    try run(Array(CommandLine.arguments.dropFirst()))
} catch {
    FileHandle.standardError.write("error: \(error)\n".data(using: .utf8)!)
    exit(1)
}
