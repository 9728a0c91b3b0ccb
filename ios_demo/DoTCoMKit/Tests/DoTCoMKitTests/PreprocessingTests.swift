import DoTCoMKit
import Foundation
import XCTest

final class PreprocessingTests: XCTestCase {
    let imagenet = (mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])

    func solid(width: Int, height: Int, rgb: (UInt8, UInt8, UInt8)) throws -> RGBAImage {
        var px = [UInt8]()
        for _ in 0..<(width * height) { px += [rgb.0, rgb.1, rgb.2, 255] }
        return try RGBAImage(width: width, height: height, pixels: px)
    }

    func testResizedSizeTruncatesTheLongerSide() {
        XCTAssertEqual(Preprocessor.resizedSize(width: 640, height: 480, shorterSide: 288).width, 384)
        XCTAssertEqual(Preprocessor.resizedSize(width: 480, height: 640, shorterSide: 288).height, 384)
        // 288 * 1000 / 333 = 864.86...: truncated, as torchvision does.
        XCTAssertEqual(Preprocessor.resizedSize(width: 1000, height: 333, shorterSide: 288).width, 864)
    }

    func testCropOriginRoundsHalfToEvenAndPads() {
        XCTAssertEqual(Preprocessor.cropOrigin(size: 288, crop: 256), 16)
        XCTAssertEqual(Preprocessor.cropOrigin(size: 5, crop: 2), 2)  // round(1.5) = 2
        XCTAssertEqual(Preprocessor.cropOrigin(size: 6, crop: 1), 2)  // round(2.5) = 2
        XCTAssertEqual(Preprocessor.cropOrigin(size: 4, crop: 7), -1)  // padded: 3 // 2
    }

    /// A solid image stays solid through any resampling: every value is (v/255 - mean)/std.
    func testSolidColourNormalisesPerChannel() throws {
        let image = try solid(width: 50, height: 30, rgb: (255, 128, 0))
        for interp in [Manifest.Interpolation.bilinear, .bicubic, .nearest] {
            let p = Manifest.Preprocessing(resize: 18, crop: [16, 16], interpolation: interp,
                                           mean: imagenet.mean, std: imagenet.std)
            let t = try Preprocessor.tensor(from: image, preprocessing: p)
            XCTAssertEqual(t.count, 3 * 16 * 16)
            for (c, v) in [255.0, 128.0, 0.0].enumerated() {
                let want = Float((v / 255 - imagenet.mean[c]) / imagenet.std[c])
                for i in 0..<(16 * 16) {
                    XCTAssertEqual(t[c * 256 + i], want, accuracy: 1e-5, "\(interp) channel \(c)")
                }
            }
        }
    }

    /// Identity size: no resampling error, the crop picks the right pixels in CHW order.
    func testIdentityResizeAndCenterCropLayout() throws {
        // 4x4 image, pixel value = 10 * y + x in red, 200 in green, x in blue.
        var px = [UInt8]()
        for y in 0..<4 { for x in 0..<4 { px += [UInt8(10 * y + x), 200, UInt8(x), 255] } }
        let image = try RGBAImage(width: 4, height: 4, pixels: px)
        let p = Manifest.Preprocessing(resize: 4, crop: [2, 2], interpolation: .bilinear,
                                       mean: [0, 0, 0], std: [1, 1, 1])
        let t = try Preprocessor.tensor(from: image, preprocessing: p)
        let red = t[0..<4].map { Int(($0 * 255).rounded()) }
        XCTAssertEqual(red, [11, 12, 21, 22])  // rows 1-2, columns 1-2
        XCTAssertEqual(t[4..<8].map { Int(($0 * 255).rounded()) }, [200, 200, 200, 200])
        XCTAssertEqual(t[8..<12].map { Int(($0 * 255).rounded()) }, [1, 2, 1, 2])
    }

    /// Halving a horizontal ramp with the antialiased bilinear filter averages pixel pairs
    /// with weights 1/4, 1/4... as PIL does: [0, 20, 40, 60] -> round(mean of taps).
    func testAntialiasedDownscaleAveragesNeighbours() throws {
        var px = [UInt8]()
        for _ in 0..<2 { for x in 0..<4 { px += [UInt8(20 * x), 0, 0, 255] } }
        let image = try RGBAImage(width: 4, height: 2, pixels: px)
        let p = Manifest.Preprocessing(resize: 1, crop: [1, 2], interpolation: .bilinear,
                                       mean: [0, 0, 0], std: [1, 1, 1])
        let t = try Preprocessor.tensor(from: image, preprocessing: p)
        // Output x=0: center 1.0, support 2 -> taps x=0,1,2 with triangle weights
        // f(-0.25)=0.75, f(0.25)=0.75, f(0.75)=0.25, normalised by their sum 1.75.
        let want0 = (0.0 * 0.75 + 20 * 0.75 + 40 * 0.25) / 1.75
        XCTAssertEqual(Int((t[0] * 255).rounded()), Int(want0.rounded()))
        XCTAssertLessThan(t[0], t[1])
    }

    func testRejectsBadInput() {
        XCTAssertThrowsError(try RGBAImage(width: 0, height: 3, pixels: []))
        XCTAssertThrowsError(try RGBAImage(width: 2, height: 2, pixels: [0, 0, 0]))
    }

    func testTopKIsSortedSoftmax() {
        let top = Classification.topK([1, 3, 2, 3], k: 3, labels: ["a", "b", "c", "d"])
        XCTAssertEqual(top.map(\.index), [1, 3, 2])
        XCTAssertEqual(top.map(\.label), ["b", "d", "c"])
        let p = Classification.softmax([1, 3, 2, 3])
        XCTAssertEqual(p.reduce(0, +), 1, accuracy: 1e-12)
        XCTAssertEqual(top[0].probability, p[1])
        // Large logits do not overflow.
        XCTAssertEqual(Classification.softmax([1000, 1000]), [0.5, 0.5])
        XCTAssertEqual(Classification.topK([0.5], k: 5).count, 1)
        // Probabilities (a Core ML classifier's output) are ranked as they are.
        let probs = Classification.topK([0.2, 0.7, 0.1], k: 2, areProbabilities: true)
        XCTAssertEqual(probs.map(\.index), [1, 0])
        XCTAssertEqual(probs[0].probability, Double(Float(0.7)))
    }
}
