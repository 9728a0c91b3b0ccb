package org.dotcom.core

import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Test

class PreprocessTest {
    private fun gray(v: Int) = (0xFF shl 24) or (v shl 16) or (v shl 8) or v

    private fun rgb(r: Int, g: Int, b: Int) = (0xFF shl 24) or (r shl 16) or (g shl 8) or b

    @Test
    fun shorterSideGoesToResizeLongerIsTruncated() {
        assertEquals(Pair(72, 96), Preprocess.resizedSize(300, 400, 72)) // 72 * 400 / 300 = 96
        assertEquals(Pair(109, 72), Preprocess.resizedSize(500, 330, 72)) // 109.09 -> 109
        assertEquals(Pair(288, 288), Preprocess.resizedSize(1000, 1000, 288))
    }

    @Test
    fun cropOffsetRoundsHalfToEvenLikePython() {
        assertEquals(0, Preprocess.cropOffset(65, 64)) // round(0.5) = 0
        assertEquals(2, Preprocess.cropOffset(67, 64)) // round(1.5) = 2
        assertEquals(2, Preprocess.cropOffset(69, 64)) // round(2.5) = 2
        assertEquals(4, Preprocess.cropOffset(72, 64))
        assertEquals(-1, Preprocess.cropOffset(62, 64)) // crop larger: pad (64 - 62) // 2
    }

    @Test
    fun bilinearHalvingAveragesPairs() {
        // 4x1 -> 2x1: antialiased bilinear with scale 2 has support 2 and weights 1/8, 3/8, 3/8, 1/8.
        val img = ArgbImage(4, 1, intArrayOf(gray(0), gray(100), gray(200), gray(40)))
        val out = Preprocess.resize(img, 2, 1, Interpolation.BILINEAR)
        // x0: (0*3 + 100*3 + 200*1) / 7 (window clipped at the left edge) = 71.43 -> 71
        // x1: (0*1 + 100*3 + 200*3 + 40*1) / 8 = 117.5 -> 118 ... clipped right: (100*1+200*3+40*3)/7
        val w0 = (0 * 3 + 100 * 3 + 200 * 1) / 7.0
        val w1 = (100 * 1 + 200 * 3 + 40 * 3) / 7.0
        assertEquals(Math.floor(w0 + 0.5).toInt(), out.pixels[0] and 0xFF)
        assertEquals(Math.floor(w1 + 0.5).toInt(), out.pixels[1] and 0xFF)
    }

    @Test
    fun sameSizeResizeIsIdentityAndNearestPicksFloor() {
        val img = ArgbImage(3, 2, IntArray(6) { gray(it * 40) })
        assertArrayEquals(img.pixels, Preprocess.resize(img, 3, 2, Interpolation.BILINEAR).pixels)
        val n = Preprocess.resize(ArgbImage(4, 1, IntArray(4) { gray(it * 10) }), 2, 1, Interpolation.NEAREST)
        assertArrayEquals(intArrayOf(gray(0), gray(20)), n.pixels)
    }

    @Test
    fun normalisesPerChannelInChwOrder() {
        // A 2x2 image already at the crop size: no resampling, only scale and normalise.
        val p = Preprocessing(2, 2, 2, Interpolation.BILINEAR, listOf(0.485, 0.456, 0.406), listOf(0.229, 0.224, 0.225))
        val img = ArgbImage(2, 2, intArrayOf(rgb(255, 0, 0), rgb(0, 255, 0), rgb(0, 0, 255), rgb(128, 128, 128)))
        val t = Preprocess.toTensor(img, p)
        assertEquals(12, t.size)
        assertEquals((1f - 0.485f) / 0.229f, t[0]) // R plane, pixel 0
        assertEquals((0f - 0.485f) / 0.229f, t[1])
        assertEquals((128 * (1f / 255f) - 0.485f) / 0.229f, t[3])
        assertEquals((1f - 0.456f) / 0.224f, t[4 + 1]) // G plane, pixel 1
        assertEquals((1f - 0.406f) / 0.225f, t[8 + 2]) // B plane, pixel 2
        assertEquals(2.2489083f, t[0], 1e-6f)
    }

    @Test
    fun fullRecipeResizesThenCentreCrops() {
        // 8x4 image whose columns are 0, 10, ..., 70: resize shorter side 4 -> 2 (8x4 -> 4x2),
        // crop 2x2 at left offset round((4 - 2) / 2) = 1.
        val img = ArgbImage(8, 4, IntArray(32) { gray((it % 8) * 10) })
        val p = Preprocessing(2, 2, 2, Interpolation.BILINEAR, listOf(0.0, 0.0, 0.0), listOf(1.0, 1.0, 1.0))
        val t = Preprocess.toTensor(img, p)
        val resized = Preprocess.resize(img, 4, 2, Interpolation.BILINEAR)
        // Columns of the resized row: weights 1/8,3/8,3/8,1/8 over pairs -> 25 for column 1 interior.
        assertEquals(25, resized.pixels[1] and 0xFF)
        assertEquals(25 * (1f / 255f), t[0]) // torchvision multiplies by float32(1 / 255)
        assertEquals((resized.pixels[2] and 0xFF) * (1f / 255f), t[1])
    }

    @Test
    fun transparentPixelsBecomeWhite() {
        val out = Preprocess.flattenAlpha(ArgbImage(2, 1, intArrayOf(0x00000000, 0x80FF0000.toInt())))
        assertEquals(rgb(255, 255, 255), out.pixels[0])
        assertEquals(rgb(255, 127, 127), out.pixels[1])
    }

    @Test
    fun cropLargerThanImagePadsWithZero() {
        val p = Preprocessing(2, 2, 4, Interpolation.NEAREST, listOf(0.0, 0.0, 0.0), listOf(1.0, 1.0, 1.0))
        // 2x2 image, crop 2x4: one zero column on each side.
        val t = Preprocess.toTensor(ArgbImage(2, 2, IntArray(4) { gray(255) }), p)
        assertEquals(listOf(0f, 1f, 1f, 0f), t.slice(0 until 4))
    }
}
