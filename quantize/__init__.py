"""int8 quantization of DoTCoM with torchao PT2E, and the report that says what it cost.

``api.quantize_model`` is the entry point (the ``quantize`` command calls it);
``backends`` holds the per-backend quantizer factory, ``numerics`` the SQNR and
per-layer analysis, ``data`` calibration/validation inputs, ``activations`` the
Co-Bias histograms of ``inspect activations``.
"""
