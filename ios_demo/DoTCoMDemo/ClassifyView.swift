import DoTCoMKit
import PhotosUI
import SwiftUI

/// A photo from the library or the camera, preprocessed as the manifest says, top-5 labels.
struct ClassifyView: View {
    let model: ModelEntry

    @State private var pickerItem: PhotosPickerItem?
    @State private var showCamera = false
    @State private var image: UIImage?
    @State private var predictions: [Classification.Prediction] = []
    @State private var inferenceMs: Double?
    @State private var error: String?
    @State private var running = false
    @State private var computeUnits: ComputeUnitsChoice = .all
    @State private var engine: InferenceEngine?

    var body: some View {
        Form {
            Section {
                if let image {
                    Image(uiImage: image).resizable().scaledToFit().frame(maxHeight: 260)
                }
                PhotosPicker("Choose a photo", selection: $pickerItem, matching: .images)
                if UIImagePickerController.isSourceTypeAvailable(.camera) {
                    Button("Take a photo") { showCamera = true }
                }
                if model.format != .pte {
                    Picker("Compute units", selection: $computeUnits) {
                        ForEach(ComputeUnitsChoice.allCases) { Text($0.label).tag($0) }
                    }
                }
            }
            if running { ProgressView() }
            if let error {
                Section { Text(error).foregroundStyle(.red) }
            }
            if !predictions.isEmpty {
                Section("Top 5") {
                    ForEach(predictions, id: \.index) { p in
                        HStack {
                            Text(p.label)
                            Spacer()
                            Text(p.probability, format: .percent.precision(.fractionLength(1))).monospacedDigit()
                        }
                    }
                    if let inferenceMs {
                        LabeledContent("Inference", value: String(format: "%.2f ms", inferenceMs))
                    }
                }
            }
        }
        .onChange(of: pickerItem) { _, item in
            guard let item else { return }
            Task {
                do {
                    guard let data = try await item.loadTransferable(type: Data.self) else {
                        throw DoTCoMError.image("the photo could not be loaded")
                    }
                    await classify(try ImageDecoding.image(from: data))
                } catch {
                    self.error = error.localizedDescription
                }
            }
        }
        .onChange(of: computeUnits) { _, _ in engine = nil }
        .sheet(isPresented: $showCamera) {
            CameraPicker { picked in Task { await classify(picked) } }
        }
    }

    @MainActor
    private func classify(_ picked: UIImage) async {
        image = picked
        error = nil
        predictions = []
        running = true
        defer { running = false }
        let model = self.model
        let units = computeUnits
        let cached = engine
        do {
            let manifest = try model.requireManifest()
            let pixels = try ImageDecoding.rgba(from: picked)
            // Preprocessing and inference off the main thread; the engine is reused.
            let (top, ms, used) = try await Task.detached(priority: .userInitiated) {
                () throws -> ([Classification.Prediction], Double, InferenceEngine) in
                let engine = try cached ?? EngineFactory.make(for: model, computeUnits: units)
                if cached == nil { try engine.load() }
                let input = try Preprocessor.tensor(from: pixels, preprocessing: manifest.preprocessing)
                var logits: [Float] = []
                let ms = try Benchmarker.time { logits = try engine.predict(input, shape: manifest.input.shape) }.ms
                let top = Classification.topK(logits, k: 5, labels: manifest.labels,
                                              areProbabilities: manifest.outputsProbabilities)
                return (top, ms, engine)
            }.value
            predictions = top
            inferenceMs = ms
            engine = used
        } catch {
            self.error = error.localizedDescription
        }
    }
}

/// The camera through UIImagePickerController (SwiftUI has no camera view).
struct CameraPicker: UIViewControllerRepresentable {
    let onPick: (UIImage) -> Void
    @Environment(\.dismiss) private var dismiss

    func makeUIViewController(context: Context) -> UIImagePickerController {
        let picker = UIImagePickerController()
        picker.sourceType = .camera
        picker.delegate = context.coordinator
        return picker
    }

    func updateUIViewController(_ controller: UIImagePickerController, context: Context) {}

    func makeCoordinator() -> Coordinator { Coordinator(self) }

    final class Coordinator: NSObject, UIImagePickerControllerDelegate, UINavigationControllerDelegate {
        let parent: CameraPicker
        init(_ parent: CameraPicker) { self.parent = parent }

        func imagePickerController(_ picker: UIImagePickerController,
                                   didFinishPickingMediaWithInfo info: [UIImagePickerController.InfoKey: Any]) {
            if let image = info[.originalImage] as? UIImage { parent.onPick(image) }
            parent.dismiss()
        }

        func imagePickerControllerDidCancel(_ picker: UIImagePickerController) { parent.dismiss() }
    }
}
