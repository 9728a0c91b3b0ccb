import CoreGraphics
import DoTCoMKit
import UIKit

/// Turns a picked photo into the RGBA bytes DoTCoMKit's preprocessing reads.
enum ImageDecoding {
    /// Decodes image data (HEIC, JPEG, PNG...) or explains why it cannot.
    static func image(from data: Data) throws -> UIImage {
        guard let image = UIImage(data: data) else {
            throw DoTCoMError.image("the photo could not be decoded (unsupported or damaged file)")
        }
        return image
    }

    /// Upright RGBA pixels of `image` at its pixel size, composited over white like the
    /// Python side's `load_image` (EXIF orientation applied, alpha removed).
    static func rgba(from image: UIImage) throws -> RGBAImage {
        let format = UIGraphicsImageRendererFormat.default()
        format.scale = 1
        format.opaque = true
        let size = CGSize(width: image.size.width * image.scale, height: image.size.height * image.scale)
        guard size.width >= 1, size.height >= 1 else { throw DoTCoMError.image("the photo is empty") }
        // Drawing through UIKit applies imageOrientation; the renderer gives an upright bitmap.
        let upright = UIGraphicsImageRenderer(size: size, format: format).image { ctx in
            UIColor.white.setFill()
            ctx.fill(CGRect(origin: .zero, size: size))
            image.draw(in: CGRect(origin: .zero, size: size))
        }
        guard let cg = upright.cgImage else { throw DoTCoMError.image("the photo has no bitmap") }
        let width = cg.width, height = cg.height
        var pixels = [UInt8](repeating: 0, count: width * height * 4)
        let drawn = pixels.withUnsafeMutableBytes { buffer -> Bool in
            guard let context = CGContext(
                data: buffer.baseAddress, width: width, height: height, bitsPerComponent: 8,
                bytesPerRow: width * 4, space: CGColorSpace(name: CGColorSpace.sRGB)!,
                bitmapInfo: CGImageAlphaInfo.noneSkipLast.rawValue) else { return false }
            context.draw(cg, in: CGRect(x: 0, y: 0, width: width, height: height))
            return true
        }
        guard drawn else { throw DoTCoMError.image("could not read the photo's pixels") }
        return try RGBAImage(width: width, height: height, pixels: pixels)
    }
}
