import SwiftUI

/// DoTCoM on the phone: classify photos and benchmark the same model through ExecuTorch
/// (XNNPACK or Core ML delegate) and through Core ML directly.
@main
struct DoTCoMDemoApp: App {
    @StateObject private var store = ModelStore()

    var body: some Scene {
        WindowGroup {
            ModelListView()
                .environmentObject(store)
        }
    }
}
