package org.dotcom.core

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Test

class ManifestTest {
    @Test
    fun parsesEveryFieldTheAppUses() {
        val m = Manifest.parse(TestManifests.json())
        assertEquals("dotcom_tiny_xnnpack_q8.pte", m.artifactFile)
        assertEquals("dotcom_tiny", m.model)
        assertEquals(listOf(1, 3, 64, 64), m.input.shape)
        assertEquals(
            Preprocessing(72, 64, 64, Interpolation.BILINEAR, listOf(0.485, 0.456, 0.406), listOf(0.229, 0.224, 0.225)),
            m.preprocessing,
        )
        assertEquals(listOf("circle", "square", "triangle", "star"), m.labels)
        assertEquals("XnnpackBackend", m.runtimeBackendName)
        assertEquals("logits", m.outputKind)
        assertEquals(0.98, m.delegation!!.fraction)
        assertEquals(mapOf("aten.view_copy.default" to 2), m.delegation!!.nonDelegatedOps)
        assertEquals("1.5.1", m.versions["executorch"])
        assertNull(m.versions["coremltools"])
        assertNull(m.computeUnit)
    }

    private fun failure(text: String): String = assertThrows(ManifestException::class.java) { Manifest.parse(text) }.message!!

    @Test
    fun rejectsBrokenManifestsWithOneLine() {
        assertEquals("labels has 3 names but num_classes is 4", failure(TestManifests.json(labels = "\"a\", \"b\", \"c\"")))
        assertEquals(
            "preprocessing.interpolation 'lanczos' is not bilinear, bicubic or nearest",
            failure(TestManifests.json(interpolation = "lanczos")),
        )
        assertEquals(
            "preprocessing.crop [32, 32] does not match input.shape [1, 3, 64, 64]",
            failure(TestManifests.json(crop = "[32, 32]")),
        )
        assertEquals(
            "manifest is missing 'input'",
            failure("""{"schema": "dotcom-mobile/manifest", "schema_version": 1, "artifact": {}}"""),
        )
        assertEquals("not a dotcom-mobile manifest (schema 'other')", failure("""{"schema": "other"}"""))
        assertEquals("manifest must be a JSON object", failure("[]"))
        assertEquals(true, failure("{").startsWith("manifest is not valid JSON"))
    }
}
