import Combine
import DoTCoMKit
import Foundation

/// File extensions of the artifacts the app runs.
let modelFileExtensions: Set<String> = ["pte", "mlpackage", "mlmodelc"]

/// Bundled models (the app's `Models` folder) and models imported from the Files app
/// (copied into Documents/Models, so they survive the picker's security scope).
@MainActor
final class ModelStore: ObservableObject {
    @Published private(set) var models: [ModelEntry] = []
    @Published var lastError: String?

    var importedFolder: URL {
        FileManager.default.urls(for: .documentDirectory, in: .userDomainMask)[0].appendingPathComponent("Models")
    }

    init() {
        refresh()
    }

    func refresh() {
        var found = Self.scan(Bundle.main.url(forResource: "Models", withExtension: nil), bundled: true)
        found += Self.scan(importedFolder, bundled: false)
        models = found
    }

    /// Models in `folder`; nonisolated so the XCTest benchmark can call it off the main actor.
    nonisolated static func scan(_ folder: URL?, bundled: Bool) -> [ModelEntry] {
        guard let folder,
              let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return [] }
        return names.sorted()
            .filter { modelFileExtensions.contains(($0 as NSString).pathExtension.lowercased()) }
            .map { ModelEntry(url: folder.appendingPathComponent($0), isBundled: bundled) }
    }

    /// Copies picked files (artifacts and their manifests) into Documents/Models.
    func importFiles(_ urls: [URL]) {
        let fm = FileManager.default
        do {
            try fm.createDirectory(at: importedFolder, withIntermediateDirectories: true)
            for url in urls {
                let scoped = url.startAccessingSecurityScopedResource()
                defer { if scoped { url.stopAccessingSecurityScopedResource() } }
                let ext = url.pathExtension.lowercased()
                guard modelFileExtensions.contains(ext) || ext == "json" else {
                    lastError = "\(url.lastPathComponent): not a model (.pte, .mlpackage) or a manifest (.json)"
                    continue
                }
                // Copy to a temporary name first: a failed copy never replaces a good model.
                let destination = importedFolder.appendingPathComponent(url.lastPathComponent)
                let temporary = importedFolder.appendingPathComponent(".import-\(UUID().uuidString)-\(url.lastPathComponent)")
                try fm.copyItem(at: url, to: temporary)
                if fm.fileExists(atPath: destination.path) {
                    _ = try fm.replaceItemAt(destination, withItemAt: temporary)
                } else {
                    try fm.moveItem(at: temporary, to: destination)
                }
            }
        } catch {
            lastError = "Import failed: \(error.localizedDescription)"
        }
        refresh()
    }

    func delete(_ model: ModelEntry) {
        guard !model.isBundled else { return }
        try? FileManager.default.removeItem(at: model.url)
        try? FileManager.default.removeItem(at: ModelEntry.manifestURL(for: model.url))
        refresh()
    }
}
