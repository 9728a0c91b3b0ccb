"""What machine a number was measured on, and how much memory the run took.

A latency without its device is noise: the report records the CPU, the core count,
the thread count the runtime was told to use and, where Linux exposes them, the
frequency governor and current clock of every core (a ``powersave`` governor or a
throttled core explains a slow run better than any statistic), and the int8
instruction sets with their ``cpu_kind`` (:mod:`.cpu`): an int8/fp32 ratio is a
property of the CPU kind as much as of the model.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from . import cpu

_PLATFORMS = {"linux": "linux", "darwin": "macos", "win32": "windows", "cygwin": "windows"}


def _read(path: str | Path) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _cpu_name() -> str | None:
    info = _read("/proc/cpuinfo")
    if info:
        for line in info.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "Processor") and value.strip():
                return value.strip()
    return platform.processor() or None


def _cpu_freqs_khz() -> list[int] | None:
    freqs = []
    for cpu in sorted(Path("/sys/devices/system/cpu").glob("cpu[0-9]*"), key=lambda p: int(p.name[3:])):
        value = _read(cpu / "cpufreq" / "scaling_cur_freq")
        if value and value.isdigit():
            freqs.append(int(value))
    return freqs or None


def cpu_features() -> tuple[str | None, list[str] | None]:
    """(architecture, recorded int8 features) of this host; features None where nothing says.

    Linux and Android: ``/proc/cpuinfo``; macOS: ``sysctl`` (no cpuinfo there).
    """
    arch = cpu.arch_name(platform.machine())
    info = _read("/proc/cpuinfo")
    if info:
        parsed_arch, features = cpu.parse_cpuinfo(info, platform.machine())
        return parsed_arch or arch, features
    if sys.platform == "darwin":
        try:
            out = subprocess.run(["sysctl", "hw.optional", "machdep.cpu"], capture_output=True, text=True,
                                 timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return arch, None
        return arch, cpu.parse_sysctl(out) if out else None
    return arch, None


def cpu_device_fields() -> dict[str, Any]:
    """This host's ``cpu_features`` and ``cpu_kind`` for a report's ``device``."""
    return cpu.device_fields(*cpu_features())


def _memory_bytes() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def device_info(threads: int | None) -> dict[str, Any]:
    """The report's ``device`` object for this host, with ``threads`` as given to the runtime."""
    return {
        "platform": _PLATFORMS.get(sys.platform, "linux"),
        "os": platform.platform(),
        "model": platform.machine() or None,
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "threads": threads,
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "cpu_freq_khz": _cpu_freqs_khz(),
        "thermal_state": None,
        "memory_bytes": _memory_bytes(),
        **cpu_device_fields(),
    }


def reset_peak_memory() -> bool:
    """Reset this process's peak RSS (Linux ``clear_refs`` 5) so the next peak is the run's own.

    Without it, VmHWM would still hold the peak of whatever ran earlier in the process
    (lowering a model takes gigabytes). Returns False where the kernel does not allow it.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def current_rss_bytes() -> int | None:
    """Resident memory of this process now (Linux ``VmRSS``); None where it is not exposed.

    Taken just before a model is loaded it is the interpreter's and the libraries'
    share, so ``peak - before`` is what loading and running the model added.
    """
    status = _read("/proc/self/status")
    if status:
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return None


def peak_memory_bytes() -> int | None:
    """Peak resident memory of this process since the last :func:`reset_peak_memory`."""
    status = _read("/proc/self/status")
    if status:
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    try:
        import resource

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(rss if sys.platform == "darwin" else rss * 1024)
    except (ImportError, OSError):
        return None
