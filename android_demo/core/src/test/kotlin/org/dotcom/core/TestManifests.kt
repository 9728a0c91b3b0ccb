package org.dotcom.core

/** A manifest as the export command writes it (DoTCoM-Tiny, 64x64, 4 classes). */
object TestManifests {
    fun json(
        labels: String = "\"circle\", \"square\", \"triangle\", \"star\"",
        numClasses: Int = 4,
        interpolation: String = "bilinear",
        crop: String = "[64, 64]",
        resize: Int = 72,
    ): String =
        """
        {
          "schema": "dotcom-mobile/manifest",
          "schema_version": 1,
          "artifact": {"file": "dotcom_tiny_xnnpack_q8.pte", "format": "pte", "size_bytes": 123456,
                       "sha256": "${"ab".repeat(32)}"},
          "model": "dotcom_tiny",
          "task": "classify",
          "num_classes": $numClasses,
          "input": {"name": "x", "shape": [1, 3, 64, 64], "layout": "NCHW", "dtype": "float32", "color": "RGB"},
          "preprocessing": {"resize": $resize, "crop": $crop, "interpolation": "$interpolation",
                            "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "crop_pct": 0.875},
          "outputs": [{"name": "logits", "shape": [1, $numClasses], "kind": "logits"}],
          "labels": [$labels],
          "backend": "xnnpack",
          "compute_unit": null,
          "quantization": "q8",
          "delegation": {"delegated_nodes": 98, "total_nodes": 100, "fraction": 0.98, "partitions": 1,
                         "non_delegated_ops": {"aten.view_copy.default": 2}},
          "versions": {"executorch": "1.5.1", "torch": "2.14.1", "coremltools": null},
          "created_at": "2026-11-24T00:00:00Z"
        }
        """.trimIndent()
}
