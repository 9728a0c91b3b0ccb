import Foundation

/// 8-bit RGBA pixels, row-major, 4 bytes per pixel in R, G, B, A order.
///
/// Alpha is ignored: composite transparent images over white before (what the Python
/// side's `load_image` does), e.g. by filling a `CGContext` white and drawing into it.
public struct RGBAImage: Sendable {
    public let width: Int
    public let height: Int
    public let bytesPerRow: Int
    public let pixels: [UInt8]

    public init(width: Int, height: Int, bytesPerRow: Int? = nil, pixels: [UInt8]) throws {
        let stride = bytesPerRow ?? width * 4
        guard width > 0, height > 0 else { throw DoTCoMError.image("image has no pixels (\(width)x\(height))") }
        guard stride >= width * 4, pixels.count >= stride * (height - 1) + width * 4 else {
            throw DoTCoMError.image("pixel buffer too small for \(width)x\(height) RGBA")
        }
        self.width = width
        self.height = height
        self.bytesPerRow = stride
        self.pixels = pixels
    }
}

/// The manifest's preprocessing, done the way the Python side does it.
///
/// `PreprocessConfig.transform()` in `model/preprocess.py` is torchvision's
/// `PILToTensor -> Resize(shorter side, antialias=True) -> CenterCrop -> ToDtype(scale) ->
/// Normalize` on uint8 pixels. A model is only as accurate on the phone as this match
/// is close, so the arithmetic is reproduced rather than approximated with Core Image:
///
/// * resize the shorter side to `resize`, the longer to `Int(resize * long / short)`
///   (truncated, as torchvision does);
/// * separable antialiased resampling (PIL's and torchvision's scheme: the filter's
///   support widens with the downscale factor), horizontal pass then vertical pass, each
///   rounded back to uint8; `nearest` picks `floor(dst * in / out)`;
/// * center crop with `round((size - crop) / 2)`, ties to even (Python's `round`),
///   zero padding when the crop is larger than the image;
/// * `x / 255`, then `(x - mean) / std` per channel in Float32, laid out CHW.
///
/// Only the cropped window of the resized image is computed: same numbers, a fraction
/// of the work on a 12-megapixel photo.
public enum Preprocessor {
    /// Resized (width, height) with the shorter side set to `shorterSide`.
    public static func resizedSize(width: Int, height: Int, shorterSide: Int) -> (width: Int, height: Int) {
        if width <= height {
            return (shorterSide, Int(Double(shorterSide) * Double(height) / Double(width)))
        }
        return (Int(Double(shorterSide) * Double(width) / Double(height)), shorterSide)
    }

    /// Top-left corner of a center crop of `crop` from `size` (negative when padding).
    public static func cropOrigin(size: Int, crop: Int) -> Int {
        if crop > size {
            return -((crop - size) / 2)
        }
        return Int((Double(size - crop) / 2.0).rounded(.toNearestOrEven))
    }

    /// The input tensor (1x3xHxW flattened, CHW order) for `image`.
    public static func tensor(from image: RGBAImage, preprocessing p: Manifest.Preprocessing) throws -> [Float] {
        guard p.crop.count == 2, p.mean.count == 3, p.std.count == 3, p.resize > 0 else {
            throw DoTCoMError.manifest("preprocessing needs crop [h, w], 3 means, 3 stds and resize > 0")
        }
        let (cropH, cropW) = (p.crop[0], p.crop[1])
        let (outW, outH) = resizedSize(width: image.width, height: image.height, shorterSide: p.resize)
        guard outW > 0, outH > 0 else { throw DoTCoMError.image("image too thin to resize (\(image.width)x\(image.height))") }
        let top = cropOrigin(size: outH, crop: cropH)
        let left = cropOrigin(size: outW, crop: cropW)

        let resized = resample(image, outWidth: outW, outHeight: outH,
                               rows: max(top, 0)..<min(top + cropH, outH),
                               cols: max(left, 0)..<min(left + cropW, outW),
                               interpolation: p.interpolation)

        let scale: Float = 1.0 / 255.0
        let mean = p.mean.map(Float.init)
        let std = p.std.map(Float.init)
        var out = [Float](repeating: 0, count: 3 * cropH * cropW)
        let plane = cropH * cropW
        for y in 0..<cropH {
            let sy = top + y
            for x in 0..<cropW {
                let sx = left + x
                let inside = sy >= 0 && sy < outH && sx >= 0 && sx < outW
                for c in 0..<3 {
                    // torchvision pads with 0 before ToDtype/Normalize: a padded pixel is 0 too.
                    let v: Float = inside ? Float(resized[(sy * outW + sx) * 3 + c]) : 0
                    out[c * plane + y * cropW + x] = (v * scale - mean[c]) / std[c]
                }
            }
        }
        return out
    }

    // MARK: - Resampling

    /// Filter taps for one output position: first input index and normalised weights.
    struct Taps {
        var start: Int
        var weights: [Double]
    }

    static func filter(_ interpolation: Manifest.Interpolation) -> (support: Double, f: (Double) -> Double) {
        switch interpolation {
        case .bilinear:
            return (1.0, { x in
                let a = abs(x)
                return a < 1 ? 1 - a : 0
            })
        case .bicubic:
            // Keys cubic with a = -0.5, as PIL and torchvision's antialiased bicubic use.
            let a = -0.5
            return (2.0, { x in
                let t = abs(x)
                if t < 1 { return ((a + 2) * t - (a + 3)) * t * t + 1 }
                if t < 2 { return (((t - 5) * t + 8) * t - 4) * a }
                return 0
            })
        case .nearest:
            return (0.5, { _ in 1 })
        }
    }

    /// Antialiased taps for resizing `inSize` to `outSize` at output index `i`.
    static func taps(inSize: Int, outSize: Int, index i: Int, interpolation: Manifest.Interpolation) -> Taps {
        if interpolation == .nearest {
            let scale = Float(inSize) / Float(outSize)
            let src = min(Int((Float(i) * scale).rounded(.down)), inSize - 1)
            return Taps(start: src, weights: [1])
        }
        let (baseSupport, f) = filter(interpolation)
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1.0)
        let support = baseSupport * filterScale
        let center = (Double(i) + 0.5) * scale
        let lo = max(Int(center - support + 0.5), 0)
        let hi = min(Int(center + support + 0.5), inSize)
        var weights = [Double]()
        weights.reserveCapacity(max(hi - lo, 0))
        var total = 0.0
        for x in lo..<max(hi, lo) {
            let w = f((Double(x) - center + 0.5) / filterScale)
            weights.append(w)
            total += w
        }
        if total != 0 {
            weights = weights.map { $0 / total }
        }
        return Taps(start: lo, weights: weights)
    }

    static func clamp8(_ v: Double) -> UInt8 {
        let r = (v + 0.5).rounded(.down)
        return UInt8(min(max(r, 0), 255))
    }

    /// Resized packed RGB (outWidth x outHeight x 3); only `rows` x `cols` are filled.
    static func resample(_ image: RGBAImage, outWidth: Int, outHeight: Int, rows: Range<Int>, cols: Range<Int>,
                         interpolation: Manifest.Interpolation) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: outWidth * outHeight * 3)
        guard !rows.isEmpty, !cols.isEmpty else { return result }
        let xTaps = cols.map { taps(inSize: image.width, outSize: outWidth, index: $0, interpolation: interpolation) }
        let yTaps = rows.map { taps(inSize: image.height, outSize: outHeight, index: $0, interpolation: interpolation) }
        // Source rows the vertical pass reads.
        let srcLo = yTaps.map(\.start).min() ?? 0
        let srcHi = yTaps.map { $0.start + $0.weights.count }.max() ?? 0

        // Horizontal pass over the needed source rows, rounded to uint8 like PIL's.
        let w = cols.count
        var horizontal = [UInt8](repeating: 0, count: max(srcHi - srcLo, 0) * w * 3)
        image.pixels.withUnsafeBufferPointer { px in
            for sy in srcLo..<srcHi {
                let rowBase = sy * image.bytesPerRow
                for (j, t) in xTaps.enumerated() {
                    var acc = (0.0, 0.0, 0.0)
                    for (k, wt) in t.weights.enumerated() {
                        let p = rowBase + (t.start + k) * 4
                        acc.0 += Double(px[p]) * wt
                        acc.1 += Double(px[p + 1]) * wt
                        acc.2 += Double(px[p + 2]) * wt
                    }
                    let o = ((sy - srcLo) * w + j) * 3
                    horizontal[o] = clamp8(acc.0)
                    horizontal[o + 1] = clamp8(acc.1)
                    horizontal[o + 2] = clamp8(acc.2)
                }
            }
        }
        // Vertical pass into the output window.
        for (i, t) in yTaps.enumerated() {
            let oy = rows.lowerBound + i
            for j in 0..<w {
                var acc = (0.0, 0.0, 0.0)
                for (k, wt) in t.weights.enumerated() {
                    let p = ((t.start + k - srcLo) * w + j) * 3
                    acc.0 += Double(horizontal[p]) * wt
                    acc.1 += Double(horizontal[p + 1]) * wt
                    acc.2 += Double(horizontal[p + 2]) * wt
                }
                let o = (oy * outWidth + cols.lowerBound + j) * 3
                result[o] = clamp8(acc.0)
                result[o + 1] = clamp8(acc.1)
                result[o + 2] = clamp8(acc.2)
            }
        }
        return result
    }
}

/// Class probabilities and the best classes of a classifier's logits.
public enum Classification {
    public struct Prediction: Equatable, Sendable {
        public var index: Int
        public var label: String
        public var probability: Double
    }

    /// Numerically stable softmax (the max is subtracted before `exp`).
    public static func softmax(_ logits: [Float]) -> [Double] {
        guard let m = logits.max() else { return [] }
        let e = logits.map { Foundation.exp(Double($0 - m)) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    /// The `k` most probable classes, best first; ties keep the lower index first.
    /// `scores` are logits unless `areProbabilities` (a manifest output of kind
    /// `probabilities`, e.g. a Core ML classifier that already applied softmax).
    public static func topK(_ scores: [Float], k: Int = 5, labels: [String] = [],
                            areProbabilities: Bool = false) -> [Prediction] {
        let p = areProbabilities ? scores.map(Double.init) : softmax(scores)
        let order = p.indices.sorted { p[$0] != p[$1] ? p[$0] > p[$1] : $0 < $1 }
        return order.prefix(max(k, 0)).map { i in
            Prediction(index: i, label: i < labels.count ? labels[i] : "class \(i)", probability: p[i])
        }
    }
}
