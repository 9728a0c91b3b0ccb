"""export/pte.py: what a .pte is, checked before any ExecuTorch runtime sees the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from dotcom_mobile.export.pte import check_program, crash_line
from dotcom_mobile.model import DotcomError


def test_real_programs_pass_and_say_what_they_hold(toy):
    portable = check_program(toy["portable"], runs_here=True)
    assert portable.methods == ("forward",) and portable.backends == () and not portable.bundled
    xnnpack = check_program(toy["xnnpack"], runs_here=True)
    assert xnnpack.backends == ("XnnpackBackend",) and xnnpack.size_bytes == toy["xnnpack"].stat().st_size
    bundled = check_program(toy["bpte"], runs_here=True)
    assert bundled.bundled and bundled.backends == ("XnnpackBackend",)


def _patched(src: Path, dst: Path, old: bytes, new: bytes) -> Path:
    data = src.read_bytes()
    assert len(old) == len(new) and old in data
    dst.write_bytes(data.replace(old, new))
    return dst


def test_a_name_the_runtime_would_quote_must_be_text(toy, tmp_path):
    # ExecuTorch logs an unknown operator's name; pybind11 decodes that line as UTF-8 and
    # aborts on these bytes. The check refuses the file before the runtime sees it.
    bad = _patched(toy["portable"], tmp_path / "bad.pte", b"aten::convolution", b"aten::\xffonvolution")
    with pytest.raises(DotcomError) as e:
        check_program(bad)
    assert str(e.value).startswith(f"{bad} is corrupt: operator ") and str(e.value).endswith("of forward is not text")


def test_a_delegate_this_runtime_lacks_is_named(toy, tmp_path):
    other = _patched(toy["xnnpack"], tmp_path / "other.pte", b"XnnpackBackend", b"VulkanBackenX!")
    assert check_program(other).backends == ("VulkanBackenX!",)  # fine for a phone
    with pytest.raises(DotcomError, match=r"delegates to VulkanBackenX!, which this machine's ExecuTorch runtime "
                                          r"does not have \(it has .*XnnpackBackend"):
        check_program(other, runs_here=True)


def test_the_program_inside_a_bundle_is_checked_too(toy, tmp_path):
    data = bytearray(toy["bpte"].read_bytes())
    at = data.find(b"ET12")
    data[at:at + 4] = b"XXXX"
    bad = tmp_path / "bad.bpte"
    bad.write_bytes(bytes(data))
    with pytest.raises(DotcomError) as e:
        check_program(bad)
    assert str(e.value) == (f"{bad} (the program in the bundle) is not an ExecuTorch program "
                            "(no ET12 file identifier at byte 4)")


def test_a_missing_method(toy):
    with pytest.raises(DotcomError, match=r"has no 'predict' method \(it has: forward\)"):
        check_program(toy["portable"], method="predict")


def test_crash_line_names_the_signal():
    assert crash_line("m.pte", -6) == "m.pte: the ExecuTorch runtime crashed (SIGABRT) while loading or running it"
    assert crash_line("m.pte", -9, doing="loading it", runtime="PyTorch") == (
        "m.pte: PyTorch crashed (SIGKILL; out of memory?) while loading it")


def test_a_bundled_program_runs_in_the_python_runner(toy):
    from dotcom_mobile.bench.runners import run_python
    from dotcom_mobile.export.pte import program_bytes

    assert program_bytes(toy["bpte"])[4:8] == b"ET12" and program_bytes(toy["portable"]) == toy["portable"].read_bytes()
    report = run_python(toy["bpte"], threads=1, warmup=0, iters=2, repeats=1)
    assert report["status"] == "ok" and len(report["results"]["latencies_ms"]) == 2
