package org.dotcom.demo

import android.content.Context
import android.graphics.Bitmap
import android.graphics.ImageDecoder
import android.graphics.Matrix
import android.net.Uri
import org.dotcom.core.ArgbImage
import java.io.IOException

/** An image that cannot be decoded; shown to the user, not thrown at them. */
class ImageException(message: String) : Exception(message)

/** Decoding images into the pixel arrays the core's preprocessing takes. */
object Images {
    /**
     * Decodes [uri] (EXIF orientation applied by ImageDecoder) into a software ARGB bitmap.
     * Very large photos are subsampled by a whole factor that keeps the shorter side at least
     * four times [minShortSide], so memory stays bounded while the antialiased resize in the
     * core still sees far more pixels than it keeps.
     */
    fun decode(context: Context, uri: Uri, minShortSide: Int): Bitmap = try {
        val source = ImageDecoder.createSource(context.contentResolver, uri)
        ImageDecoder.decodeBitmap(source) { decoder, info, _ ->
            decoder.allocator = ImageDecoder.ALLOCATOR_SOFTWARE
            val short = minOf(info.size.width, info.size.height)
            val factor = short / (4 * minShortSide)
            if (factor >= 2) decoder.setTargetSampleSize(factor)
        }
    } catch (e: IOException) {
        throw ImageException("cannot decode this image (${e.message ?: e.javaClass.simpleName})")
    } catch (e: IllegalArgumentException) {
        throw ImageException("cannot decode this image (${e.message})")
    }

    /** Rotates a camera frame upright. */
    fun rotate(bitmap: Bitmap, degrees: Int): Bitmap {
        if (degrees % 360 == 0) return bitmap
        val m = Matrix().apply { postRotate(degrees.toFloat()) }
        return Bitmap.createBitmap(bitmap, 0, 0, bitmap.width, bitmap.height, m, true)
    }

    /** The bitmap's pixels as 0xAARRGGBB ints, row-major. */
    fun toArgb(bitmap: Bitmap): ArgbImage {
        val soft =
            if (bitmap.config == Bitmap.Config.ARGB_8888) {
                bitmap
            } else {
                bitmap.copy(Bitmap.Config.ARGB_8888, false)
                    ?: throw ImageException("cannot convert a ${bitmap.config} image to ARGB")
            }
        val pixels = IntArray(soft.width * soft.height)
        soft.getPixels(pixels, 0, soft.width, 0, 0, soft.width, soft.height)
        return ArgbImage(soft.width, soft.height, pixels)
    }
}
