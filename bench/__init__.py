"""Host benchmarks: run an artifact under one protocol and write its latency report.

* :mod:`.runners` - ExecuTorch's Python runtime, PyTorch eager and ONNX Runtime baselines.
* :mod:`.native` - the C++ runner in ``runner/`` (build and run).
* :mod:`.isolate` - one benchmark in a fresh process, so its peak memory is its own.
* :mod:`.suite` - plan and run artifacts x threads x runners (``bench``, ``demo``, ``perf``).
* :mod:`.commands` - ``dotcom-mobile bench``.

Nothing is imported here, so ``dotcom-mobile --help`` stays fast.
"""
