package org.dotcom.core

import kotlin.math.abs
import kotlin.math.floor
import kotlin.math.max
import kotlin.math.min
import kotlin.math.round

/**
 * An RGB image as packed 0xAARRGGBB ints, row-major (what Android's Bitmap.getPixels gives).
 */
class ArgbImage(val width: Int, val height: Int, val pixels: IntArray) {
    init {
        require(width > 0 && height > 0) { "image must not be empty, got ${width}x$height" }
        require(pixels.size == width * height) { "expected ${width * height} pixels, got ${pixels.size}" }
    }
}

/**
 * The manifest's preprocessing on a pixel array, done the way the Python side does it.
 *
 * The reference is `PreprocessConfig.transform()` (torchvision v2 on a uint8 tensor):
 * resize the shorter side to `resize` (longer side `int(resize * long / short)`) with an
 * antialiased filter whose support widens with the scale (as PIL and torch's `antialias=True`),
 * separable, horizontal pass first, fixed-point weights, each pass rounded to uint8; center crop with the offset
 * `round((size - crop) / 2)` (Python rounds half to even) and zero padding when the crop is
 * larger; then `(x / 255 - mean) / std` in float32. Android's Bitmap scaling is neither
 * antialiased nor rounded the same way, which is why the arithmetic lives here.
 */
object Preprocess {
    /** Output size (width, height) of resizing the shorter side of [width] x [height] to [size]. */
    fun resizedSize(width: Int, height: Int, size: Int): Pair<Int, Int> {
        require(size >= 1) { "resize must be positive, got $size" }
        return if (width <= height) {
            Pair(size, (size.toLong() * height / width).toInt())
        } else {
            Pair((size.toLong() * width / height).toInt(), size)
        }
    }

    /**
     * Top-left offset of a center crop of [crop] from [size]: Python's round((size - crop) / 2);
     * kotlin.math.round rounds half to even too. A larger crop pads: negative offset.
     */
    fun cropOffset(size: Int, crop: Int): Int = if (crop > size) -((crop - size) / 2) else round((size - crop) / 2.0).toInt()

    /** Composites alpha on white (as `load_image` does) and drops the alpha byte. */
    fun flattenAlpha(image: ArgbImage): ArgbImage {
        val out =
            IntArray(image.pixels.size) { i ->
                val p = image.pixels[i]
                val a = p ushr 24
                if (a == 255) {
                    p
                } else {
                    fun blend(c: Int) = ((c * a + 255 * (255 - a)) / 255.0 + 0.5).toInt()
                    (0xFF shl 24) or (blend((p shr 16) and 0xFF) shl 16) or (blend((p shr 8) and 0xFF) shl 8) or blend(p and 0xFF)
                }
            }
        return ArgbImage(image.width, image.height, out)
    }

    /** Resizes to exactly [outWidth] x [outHeight] with [interpolation] (antialiased when shrinking). */
    fun resize(image: ArgbImage, outWidth: Int, outHeight: Int, interpolation: Interpolation): ArgbImage {
        require(outWidth >= 1 && outHeight >= 1) { "resize target must be positive" }
        if (outWidth == image.width && outHeight == image.height) return image
        if (interpolation == Interpolation.NEAREST) return nearest(image, outWidth, outHeight)
        val horizontal = if (outWidth != image.width) resampleRows(image, outWidth, interpolation) else image
        return if (outHeight != image.height) resampleColumns(horizontal, outHeight, interpolation) else horizontal
    }

    /** The whole recipe: ARGB pixels -> CHW float32 tensor of shape [3, cropHeight, cropWidth]. */
    fun toTensor(image: ArgbImage, p: Preprocessing): FloatArray {
        val flat = flattenAlpha(image)
        val (rw, rh) = resizedSize(flat.width, flat.height, p.resize)
        val resized = resize(flat, rw, rh, p.interpolation)
        val ch = p.cropHeight
        val cw = p.cropWidth
        val top = cropOffset(rh, ch)
        val left = cropOffset(rw, cw)
        val out = FloatArray(3 * ch * cw)
        // torchvision: uint8 -> float32 times float32(1 / 255), then (x - mean) / std in float32.
        val inv255 = (1.0 / 255.0).toFloat()
        val mean = FloatArray(3) { p.mean[it].toFloat() }
        val std = FloatArray(3) { p.std[it].toFloat() }
        val plane = ch * cw
        for (y in 0 until ch) {
            val sy = y + top
            for (x in 0 until cw) {
                val sx = x + left
                val px = if (sy in 0 until rh && sx in 0 until rw) resized.pixels[sy * rw + sx] else 0
                val o = y * cw + x
                out[o] = ((px shr 16 and 0xFF) * inv255 - mean[0]) / std[0]
                out[plane + o] = ((px shr 8 and 0xFF) * inv255 - mean[1]) / std[1]
                out[2 * plane + o] = ((px and 0xFF) * inv255 - mean[2]) / std[2]
            }
        }
        return out
    }

    private fun nearest(image: ArgbImage, outWidth: Int, outHeight: Int): ArgbImage {
        // torch's "nearest": src = floor(dst * in / out), clamped.
        val sx = IntArray(outWidth) { min(floor(it * image.width.toDouble() / outWidth).toInt(), image.width - 1) }
        val sy = IntArray(outHeight) { min(floor(it * image.height.toDouble() / outHeight).toInt(), image.height - 1) }
        val out = IntArray(outWidth * outHeight) { i -> image.pixels[sy[i / outWidth] * image.width + sx[i % outWidth]] }
        return ArgbImage(outWidth, outHeight, out)
    }

    /**
     * Per-output-index source window and weights of a 1-D antialiased filter, as fixed-point
     * integers: torch's uint8 path (and PIL) quantise the normalised weights to
     * `round(w * 2^precision)` with the largest precision that keeps them in 16 bits, then
     * accumulate integers and round by adding `2^(precision - 1)` before the shift. Doing the
     * same makes the result match torchvision's bit for bit instead of differing by one level
     * whenever the exact value lies near a rounding boundary.
     */
    private class Kernel(val start: IntArray, val weights: Array<IntArray>, val precision: Int)

    private fun filter(interpolation: Interpolation, x: Double): Double {
        val t = abs(x)
        return when (interpolation) {
            Interpolation.BILINEAR -> if (t < 1.0) 1.0 - t else 0.0

            Interpolation.BICUBIC -> {
                val a = -0.5 // PIL's and torch's antialiased bicubic
                when {
                    t < 1.0 -> ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0
                    t < 2.0 -> (((t - 5.0) * t + 8.0) * t - 4.0) * a
                    else -> 0.0
                }
            }

            Interpolation.NEAREST -> error("nearest has no filter")
        }
    }

    private fun kernel(inSize: Int, outSize: Int, interpolation: Interpolation): Kernel {
        val scale = inSize.toDouble() / outSize
        val support = (if (interpolation == Interpolation.BICUBIC) 2.0 else 1.0) * max(scale, 1.0)
        val invScale = 1.0 / max(scale, 1.0)
        val start = IntArray(outSize)
        val weights =
            Array(outSize) { i ->
                val center = (i + 0.5) * scale
                val lo = max((center - support + 0.5).toInt(), 0)
                val hi = min((center + support + 0.5).toInt(), inSize)
                start[i] = lo
                val w = DoubleArray(hi - lo) { j -> filter(interpolation, (j + lo - center + 0.5) * invScale) }
                val total = w.sum()
                if (total != 0.0) for (j in w.indices) w[j] /= total
                w
            }
        val wMax = weights.maxOf { w -> w.maxOrNull() ?: 0.0 }
        var precision = 0
        while (precision < 22 && (0.5 + wMax * (1 shl (precision + 1))).toInt() < (1 shl 15)) precision++
        val fixed =
            Array(outSize) { i ->
                IntArray(weights[i].size) { j ->
                    val v = weights[i][j] * (1 shl precision)
                    if (v < 0) (-0.5 + v).toInt() else (0.5 + v).toInt()
                }
            }
        return Kernel(start, fixed, precision)
    }

    private fun clamp8(v: Int): Int = min(255, max(0, v))

    private fun resampleRows(image: ArgbImage, outWidth: Int, interpolation: Interpolation): ArgbImage {
        val k = kernel(image.width, outWidth, interpolation)
        val out = IntArray(outWidth * image.height)
        for (y in 0 until image.height) {
            val row = y * image.width
            for (x in 0 until outWidth) {
                out[y * outWidth + x] = mix(image.pixels, k.start[x], 1, row, k.weights[x], k.precision)
            }
        }
        return ArgbImage(outWidth, image.height, out)
    }

    private fun resampleColumns(image: ArgbImage, outHeight: Int, interpolation: Interpolation): ArgbImage {
        val k = kernel(image.height, outHeight, interpolation)
        val out = IntArray(image.width * outHeight)
        for (y in 0 until outHeight) {
            for (x in 0 until image.width) {
                out[y * image.width + x] = mix(image.pixels, k.start[y], image.width, x, k.weights[y], k.precision)
            }
        }
        return ArgbImage(image.width, outHeight, out)
    }

    /** Fixed-point weighted sum of pixels `base + (start + j) * stride`, each channel rounded to uint8. */
    private fun mix(pixels: IntArray, start: Int, stride: Int, base: Int, w: IntArray, precision: Int): Int {
        val half = if (precision > 0) 1 shl (precision - 1) else 0
        var r = half
        var g = half
        var b = half
        for (j in w.indices) {
            val p = pixels[base + (start + j) * stride]
            r += w[j] * (p shr 16 and 0xFF)
            g += w[j] * (p shr 8 and 0xFF)
            b += w[j] * (p and 0xFF)
        }
        return (0xFF shl 24) or (clamp8(r shr precision) shl 16) or (clamp8(g shr precision) shl 8) or clamp8(b shr precision)
    }
}
