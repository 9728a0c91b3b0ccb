import DoTCoMKit
import SwiftUI

/// Warm-up and iterations in, p50/p90/mean, load time, memory and thermal state out; the
/// report is a latency-report v1 JSON, shared through the share sheet.
struct BenchmarkView: View {
    let model: ModelEntry

    @State private var settings = BenchmarkSettings()
    @State private var running = false
    @State private var progress = 0.0
    @State private var report: LatencyReport?
    @State private var reportURL: URL?
    @State private var error: String?

    var body: some View {
        Form {
            Section("Protocol") {
                Stepper("Warm-up: \(settings.warmup)", value: $settings.warmup, in: 0...100, step: 5)
                Stepper("Iterations: \(settings.iterations)", value: $settings.iterations, in: 1...1000, step: 10)
                Stepper("Repeats: \(settings.repeats)", value: $settings.repeats, in: 1...10)
                if model.format != .pte {
                    Picker("Compute units", selection: $settings.computeUnits) {
                        ForEach(ComputeUnitsChoice.allCases) { Text($0.label).tag($0) }
                    }
                }
                Button(running ? "Running…" : "Run benchmark") { start() }.disabled(running)
                if running { ProgressView(value: progress) }
            }
            if let error {
                Section { Text(error).foregroundStyle(.red) }
            }
            if let report, let r = report.results {
                Section("Results") {
                    row("p50", ms(r.p50Ms))
                    row("p90", ms(r.p90Ms))
                    row("mean", ms(r.meanMs))
                    row("stddev", ms(r.stddevMs))
                    row("load", r.loadMs.map(ms) ?? "–")
                    row("first inference", r.firstInferenceMs.map(ms) ?? "–")
                    row("memory (phys_footprint)", r.peakMemoryBytes.map {
                        ByteCountFormatter.string(fromByteCount: Int64($0), countStyle: .memory)
                    } ?? "–")
                    row("thermal state", report.device.thermalState ?? "–")
                    row("engine", report.runtime.runner + (report.runtime.computeUnit.map { " · \($0)" } ?? ""))
                }
            }
            if let reportURL {
                Section {
                    ShareLink(item: reportURL) { Label("Export report (JSON)", systemImage: "square.and.arrow.up") }
                }
            }
        }
    }

    private func row(_ name: String, _ value: String) -> some View {
        LabeledContent(name) { Text(value).monospacedDigit() }
    }

    private func ms(_ v: Double) -> String { String(format: "%.2f ms", v) }

    private func start() {
        running = true
        progress = 0
        error = nil
        report = nil
        reportURL = nil
        let model = self.model
        let settings = self.settings
        Task.detached(priority: .userInitiated) {
            let result = Benchmarker.run(model, settings: settings) { p in
                Task { @MainActor in progress = p }
            }
            let url = try? ReportStore.write(result)
            await MainActor.run {
                report = result
                reportURL = url
                if result.status == "error" { error = result.error }
                running = false
            }
        }
    }
}
