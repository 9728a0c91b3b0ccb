import DoTCoMKit
import Foundation

/// A model the app can run: an artifact and the manifest beside it.
struct ModelEntry: Identifiable, Hashable {
    enum Format: String { case pte, mlpackage, mlmodelc }

    let url: URL
    let format: Format
    let isBundled: Bool
    /// The decoded manifest, or why there is none (shown in the list, never a crash).
    let manifest: Result<Manifest, DoTCoMError>

    var id: URL { url }
    var name: String { url.lastPathComponent }

    static func == (a: ModelEntry, b: ModelEntry) -> Bool { a.url == b.url }
    func hash(into hasher: inout Hasher) { hasher.combine(url) }

    func requireManifest() throws -> Manifest {
        try manifest.get()
    }

    /// `<stem>.json` beside the artifact, as `dotcom-mobile export` writes it.
    static func manifestURL(for url: URL) -> URL {
        url.deletingPathExtension().appendingPathExtension("json")
    }

    init(url: URL, isBundled: Bool) {
        self.url = url
        self.format = Format(rawValue: url.pathExtension.lowercased()) ?? .pte
        self.isBundled = isBundled
        let manifestURL = Self.manifestURL(for: url)
        if FileManager.default.fileExists(atPath: manifestURL.path) {
            do {
                manifest = .success(try Manifest.load(from: manifestURL))
            } catch let error as DoTCoMError {
                manifest = .failure(error)
            } catch {
                manifest = .failure(.manifest("\(manifestURL.lastPathComponent): \(error.localizedDescription)"))
            }
        } else {
            manifest = .failure(.manifest("no manifest: put \(manifestURL.lastPathComponent) beside \(url.lastPathComponent)"))
        }
    }
}
