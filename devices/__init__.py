"""Benchmarks on phones: the Android demo app over adb, the iOS demo app through Xcode.

* :mod:`.android` - ``dotcom-mobile android doctor|install|push|bench|pull``.
* :mod:`.ios` - ``dotcom-mobile ios bench`` (macOS with Xcode).

Both store the phone's latency-report v1 files (:mod:`dotcom_mobile.report`) beside the
host's. Nothing is imported here, so ``dotcom-mobile --help`` stays fast.
"""
