// swift-tools-version:5.9
// DoTCoMKit: the app's logic without UIKit, Core ML or ExecuTorch, so that it builds and
// is tested on Linux too (see ../tools/check.sh). Foundation only.
import PackageDescription

let package = Package(
    name: "DoTCoMKit",
    platforms: [.iOS(.v17), .macOS(.v14)],
    products: [
        .library(name: "DoTCoMKit", targets: ["DoTCoMKit"]),
        // Host-side contract tool: lets the Python tests check that what DoTCoMKit writes
        // and reads is what the Python side writes and reads. Not linked into the app.
        .executable(name: "dotcomkit-contract", targets: ["dotcomkit-contract"]),
    ],
    targets: [
        .target(name: "DoTCoMKit"),
        .executableTarget(name: "dotcomkit-contract", dependencies: ["DoTCoMKit"]),
        .testTarget(name: "DoTCoMKitTests", dependencies: ["DoTCoMKit"]),
    ]
)
