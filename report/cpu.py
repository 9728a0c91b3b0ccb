"""Which int8 instructions a CPU has, and the short ``cpu_kind`` a table groups by.

An int8/fp32 ratio means nothing without the CPU kind: XNNPACK's QS8 kernels use
VNNI or AMX where the CPU has them and fall back to 16-bit multiply-adds on AVX2,
so the same int8 .pte is 2x faster than fp32 on one machine and slower on another
(issue 13). A report therefore records the few instruction sets that decide this,
under their Linux ``/proc/cpuinfo`` names, and a kind derived from them:

===================  ==========================================  =================
kind                 when                                        int8 dot product
===================  ==========================================  =================
``x86-amx``          ``amx_int8`` (Sapphire Rapids and later)    AMX tiles
``x86-avx512-vnni``  ``avx512_vnni`` (Cascade Lake, Zen 4, ...)  vpdpbusd, 512 bit
``x86-avx-vnni``     ``avx_vnni`` (Alder Lake, ...)              vpdpbusd, 256 bit
``x86-avx512``       ``avx512f`` without VNNI (Skylake-X)        none
``x86-avx2``         ``avx2``                                    none
``arm64-sme``        ``sme`` (Apple M4/A18, ...)                 outer products
``arm64-i8mm``       ``i8mm`` (Armv8.6: Cortex-X2/A710, A15+)    smmla
``arm64-dotprod``    ``asimddp`` (Armv8.2 dotprod: A76, A13+)    sdot
``x86`` / ``arm64``  none of the above                           none
===================  ==========================================  =================

Everything here is a pure function of text (``/proc/cpuinfo`` from this host or a
phone over adb, ``sysctl`` output on macOS) or of an Apple model name, so it is tested
on recorded samples; :mod:`.host` and ``devices/`` only fetch the text.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

#: The instruction sets a report records, in this order (Linux cpuinfo names).
X86_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile", "amx_int8")
ARM_FEATURES = ("asimddp", "i8mm", "sve", "sme")
FEATURES = X86_FEATURES + ARM_FEATURES

#: kind -> the feature it is named after, most capable first within an architecture.
KIND_FEATURE: dict[str, str] = {
    "x86-amx": "amx_int8",
    "x86-avx512-vnni": "avx512_vnni",
    "x86-avx-vnni": "avx_vnni",
    "x86-avx512": "avx512f",
    "x86-avx2": "avx2",
    "arm64-sme": "sme",
    "arm64-i8mm": "i8mm",
    "arm64-dotprod": "asimddp",
}

_ARCH_ALIASES = {"x86_64": "x86", "amd64": "x86", "i386": "x86", "i686": "x86", "x86": "x86",
                 "aarch64": "arm64", "arm64": "arm64", "armv8": "arm64"}


def arch_name(machine: str | None) -> str | None:
    """``x86`` / ``arm64`` / ``arm`` from ``platform.machine()`` or an ABI string (None if unknown)."""
    if not machine:
        return None
    m = machine.lower()
    if m in _ARCH_ALIASES:
        return _ARCH_ALIASES[m]
    if m.startswith("arm64") or m.startswith("aarch64"):
        return "arm64"
    if m.startswith("arm"):
        return "arm"
    return None


def select_features(flags: Iterable[str]) -> list[str]:
    """The recorded subset of ``flags``, in :data:`FEATURES` order."""
    have = {f.strip().lower() for f in flags}
    return [f for f in FEATURES if f in have]


def cpu_kind(arch: str | None, features: Iterable[str]) -> str | None:
    """The short kind (``x86-avx2``, ``arm64-i8mm``, ...) of a CPU; None when the architecture is unknown."""
    if arch is None:
        return None
    have = set(features)
    for kind, feature in KIND_FEATURE.items():
        if kind.startswith(arch + "-") and feature in have:
            return kind
    return arch


def parse_cpuinfo(text: str, machine: str | None = None) -> tuple[str | None, list[str] | None]:
    """(architecture, recorded features) from Linux ``/proc/cpuinfo`` text (x86 ``flags``, ARM ``Features``).

    Features are None (unknown, not "none") when the text has no flags line at all.

    A flag counts only if every processor lists it: on a big.LITTLE phone a thread may
    run on any core, and the kernel already reports the common subset there. ``machine``
    (``platform.machine()`` or the ABI) decides the architecture when given; otherwise
    the text does (x86 has ``flags``, ARM ``Features`` and ``CPU architecture``).
    """
    flag_sets: list[set[str]] = []
    arch = arch_name(machine)
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        if key in ("flags", "features"):
            flag_sets.append(set(value.split()))
            if arch is None and key == "flags":
                arch = "x86"
        elif key == "cpu architecture" and arch is None:
            v = value.strip().lower()
            arch = "arm64" if v.startswith("8") or v.startswith("9") or v == "aarch64" else "arm"
    if not flag_sets:
        return arch, None
    if arch is None:
        arch = "arm64" if any("asimd" in s for s in flag_sets) else None
    return arch, select_features(set.intersection(*flag_sets))


#: macOS ``sysctl`` keys (value 1 when present) -> cpuinfo names.
SYSCTL_FEATURES = {
    "hw.optional.arm.FEAT_DotProd": "asimddp",
    "hw.optional.arm.FEAT_I8MM": "i8mm",
    "hw.optional.arm.FEAT_SME": "sme",
    "hw.optional.avx2_0": "avx2",
    "hw.optional.avx512f": "avx512f",
}


def parse_sysctl(text: str) -> list[str]:
    """Recorded features from ``sysctl`` output (``key: value`` lines) on macOS.

    Intel Macs list VNNI only in ``machdep.cpu.leaf7_features`` (``AVX512VNNI``).
    """
    found = []
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not sep:
            continue
        if key in SYSCTL_FEATURES and value == "1":
            found.append(SYSCTL_FEATURES[key])
        elif key in ("machdep.cpu.leaf7_features", "machdep.cpu.features"):
            words = set(value.upper().split())
            found += [name for word, name in (("AVX2", "avx2"), ("AVX512F", "avx512f"),
                                              ("AVX512VNNI", "avx512_vnni")) if word in words]
    return select_features(found)


# --------------------------------------------------------------------------- Apple chips

#: iPhone model identifier major number -> chip (``iPhone15,2`` is an A16).
IPHONE_CHIPS = {10: "A11", 11: "A12", 12: "A13", 13: "A14", 14: "A15", 15: "A16", 16: "A17 Pro", 17: "A18",
                18: "A19"}
#: Chip generation -> its int8 features, from LLVM's AArch64 processor definitions
#: (apple-a13: Armv8.4 with dotprod; apple-a15/M2: Armv8.6 with i8mm; A18/M4: SME).
_APPLE_GENERATIONS: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
    (("A11", "A12"), ()),
    (("A13", "A14", "M1"), ("asimddp",)),
    (("A15", "A16", "A17", "M2", "M3"), ("asimddp", "i8mm")),
    (("A18", "A19", "M4", "M5"), ("asimddp", "i8mm", "sme")),
]


def apple_chip(model: str | None, cpu: str | None = None) -> str | None:
    """``Apple A16`` from an iPhone identifier (``iPhone15,2``) or a CPU brand (``Apple M2 Pro``)."""
    for text in (cpu, model):
        if not text:
            continue
        m = re.search(r"\bApple (?:M\d+|A\d+)(?: (?:Pro|Max|Ultra|Bionic))*", text)
        if m:
            return m.group(0)
    m = re.fullmatch(r"iPhone(\d+),\d+", (model or "").strip())
    if m and int(m.group(1)) in IPHONE_CHIPS:
        return f"Apple {IPHONE_CHIPS[int(m.group(1))]}"
    return None


def apple_features(chip: str) -> list[str] | None:
    """The int8 features of an Apple chip name (``Apple A16``), None for a chip not in the table."""
    m = re.search(r"\b([AM]\d+)", chip)
    if not m:
        return None
    for names, feats in _APPLE_GENERATIONS:
        if m.group(1) in names:
            return list(feats)
    return None


def device_fields(arch: str | None, features: list[str] | None) -> dict[str, Any]:
    """The report ``device`` keys this module owns: ``cpu_features`` and ``cpu_kind``."""
    if features is None:
        return {"cpu_features": None, "cpu_kind": None}
    return {"cpu_features": list(features), "cpu_kind": cpu_kind(arch, features)}


def kind_problem(device: dict[str, Any]) -> str | None:
    """Why a report's ``cpu_kind`` contradicts its ``cpu_features`` (None when they agree or are absent).

    The kind must be the one its features derive: ``x86-amx`` without ``amx_int8``, or
    ``x86-avx2`` on a CPU listed with ``avx512_vnni``, would put a number in the wrong group.
    """
    kind, features = device.get("cpu_kind"), device.get("cpu_features")
    if kind is None or features is None:
        return None
    expected = cpu_kind(str(kind).split("-", 1)[0], features)
    if expected != kind:
        return f"cpu_kind {kind!r} does not match cpu_features {list(features)} (expected {expected!r})"
    return None
