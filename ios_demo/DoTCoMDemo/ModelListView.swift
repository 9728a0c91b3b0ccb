import DoTCoMKit
import SwiftUI
import UniformTypeIdentifiers

/// The bundled models and those imported from the Files app; each opens Classify and Benchmark.
struct ModelListView: View {
    @EnvironmentObject private var store: ModelStore
    @State private var importing = false

    private var importTypes: [UTType] {
        [UTType(filenameExtension: "pte"), UTType(filenameExtension: "mlpackage"), .json, .package, .data]
            .compactMap { $0 }
    }

    var body: some View {
        NavigationStack {
            List {
                section("Bundled", store.models.filter(\.isBundled))
                section("Imported", store.models.filter { !$0.isBundled })
            }
            .overlay {
                if store.models.isEmpty {
                    ContentUnavailableView(
                        "No models",
                        systemImage: "cpu",
                        description: Text("Import a .pte or .mlpackage with its manifest (.json) from Files, "
                                          + "or add them to the app's Models folder before building."))
                }
            }
            .navigationTitle("DoTCoM models")
            .toolbar {
                Button { importing = true } label: { Label("Import", systemImage: "square.and.arrow.down") }
            }
            .fileImporter(isPresented: $importing, allowedContentTypes: importTypes, allowsMultipleSelection: true) { result in
                switch result {
                case .success(let urls): store.importFiles(urls)
                case .failure(let error): store.lastError = error.localizedDescription
                }
            }
            .alert("Error", isPresented: Binding(get: { store.lastError != nil }, set: { if !$0 { store.lastError = nil } })) {
                Button("OK", role: .cancel) {}
            } message: {
                Text(store.lastError ?? "")
            }
            .navigationDestination(for: ModelEntry.self) { ModelDetailView(model: $0) }
            .refreshable { store.refresh() }
        }
    }

    @ViewBuilder
    private func section(_ title: String, _ models: [ModelEntry]) -> some View {
        if !models.isEmpty {
            Section(title) {
                ForEach(models) { model in
                    NavigationLink(value: model) { ModelRow(model: model) }
                }
                .onDelete { offsets in
                    for index in offsets { store.delete(models[index]) }
                }
            }
        }
    }
}

struct ModelRow: View {
    let model: ModelEntry

    var body: some View {
        VStack(alignment: .leading, spacing: 2) {
            Text(model.name).font(.headline)
            switch model.manifest {
            case .success(let m):
                Text("\(m.model) · \(m.backend) · \(m.quantization) · \(m.input.shape.map(String.init).joined(separator: "x"))")
                    .font(.caption).foregroundStyle(.secondary)
            case .failure(let error):
                Text(error.description).font(.caption).foregroundStyle(.red)
            }
        }
    }
}

/// Classify and Benchmark for one model.
struct ModelDetailView: View {
    let model: ModelEntry

    var body: some View {
        TabView {
            ClassifyView(model: model).tabItem { Label("Classify", systemImage: "photo") }
            BenchmarkView(model: model).tabItem { Label("Benchmark", systemImage: "speedometer") }
        }
        .navigationTitle(model.name)
        .navigationBarTitleDisplayMode(.inline)
    }
}
