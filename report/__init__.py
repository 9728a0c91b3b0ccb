"""latency-report v1: the one file every runner writes, and the tables and plots made from it.

* :mod:`.latency` - build, validate and name reports, describe artifacts, write files atomically.
* :mod:`.minibench` - ExecuTorch benchmark-app ``benchmark_results.json`` -> reports.
* :mod:`.collect` - what ``report`` reads: reports, accuracy files, minibench results.
* :mod:`.stats` - the statistics every runner (Python, C++, Kotlin, Swift) computes the same way.
* :mod:`.host` - the report's ``device`` object for this machine, and its peak memory.
* :mod:`.render` - terminal, Markdown and HTML tables, the two PNG plots.
* :mod:`.commands` - ``dotcom-mobile report``.
* ``schemas/`` - the JSON Schema and the statistics test vectors shared with the apps and the C++ runner.

Nothing is imported here, so ``dotcom-mobile --help`` stays fast.
"""
