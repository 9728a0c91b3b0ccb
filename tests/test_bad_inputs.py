"""Every bad input gets one clear line: a fuzz suite over every command that takes a file.

Each command is fed, in place of the file it expects: zero bytes, 5,000 random bytes,
the first half of a valid file, a valid file of the wrong kind (a .pt2 where a .pte is
expected, a report where a manifest is, text named .png), a path that does not exist,
a directory, and a file without read permission. For each: a non-zero exit, exactly
one line on stderr (file descriptor 2, so the runtime's C++ log would show too),
starting with ``Error:`` and naming the file, no traceback, and the case folder
(outputs included) exactly as it was.

The commands run in this process through the real entry point (``cli.main``); the
valid files they are damaged from are built once per session and are small (a
two-layer conv net's .pte, an untrained DoTCoM-Tiny checkpoint). Hypothesis mutates
valid reports and manifests; a few subprocess cases check what a user's terminal gets
(the issue's 5,000-byte bad.pte, a runtime crash in the benchmark child, the
import-time warnings that only ``-v`` shows).

``DOTCOM_BAD_INPUTS_TABLE=FILE`` appends "command<TAB>input<TAB>what it printed" per
case to FILE (the table in the issue's report).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import torch

from dotcom_mobile.cli import main

KINDS = ("empty", "random", "truncated", "wrong_kind", "missing", "directory", "unreadable")
PTE = "dotcom_tiny_xnnpack_fp32.pte"
MANIFEST = "dotcom_tiny_xnnpack_fp32.json"
BENCH_FAST = ["--threads", "1", "--warmup", "0", "--iters", "1", "--repeats", "1", "--no-progress"]
CLASSES = ["circle", "square", "star", "triangle"]


# --------------------------------------------------------------------------- valid files


@pytest.fixture(scope="session")
def valid(toy, tiny_ckpt, tmp_path_factory) -> dict:
    """Bytes of one valid file per kind, and the folders some commands need beside the bad file."""
    from PIL import Image

    from dotcom_mobile.report.latency import make_report
    from dotcom_mobile.export.manifest import build_manifest
    from dotcom_mobile.model import PreprocessConfig
    from dotcom_mobile.train.synthetic import make_shapes_dataset

    d = tmp_path_factory.mktemp("valid")
    pte = d / PTE
    pte.write_bytes(toy["xnnpack"].read_bytes())
    meta = {"model": "dotcom_tiny", "task": "classify", "num_classes": 4, "class_names": CLASSES,
            "preprocess": PreprocessConfig((3, 16, 16), crop_pct=1.0)}
    manifest = build_manifest(artifact=pte, meta=meta, input_shape=(1, 3, 16, 16),
                              outputs=[{"name": "logits", "shape": [1, 4], "kind": "logits"}],
                              backend="xnnpack", quantization="fp32")
    # A quantize-style .pt2: a torch.export program with the dotcom_meta.json quantize writes.
    pt2 = d / "dotcom_tiny_xnnpack_q8.pt2"
    pt2_meta = {**meta, "preprocess": meta["preprocess"].to_state(), "backend": "xnnpack", "quantization": "q8"}
    torch.export.save(torch.export.load(toy["pt2"]), pt2, extra_files={"dotcom_meta.json": json.dumps(pt2_meta)})
    report = make_report(artifact={"name": PTE, "backend": "xnnpack", "quantization": "fp32"}, runner="python",
                         threads=1, warmup=0, iterations=3, repeats=1, latencies_ms=[1.0, 1.1, 1.2])
    png = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 60, 20)).save(png, format="PNG")
    apk = io.BytesIO()
    with zipfile.ZipFile(apk, "w") as z:
        z.writestr("AndroidManifest.xml", "<manifest/>")
    return {
        "pte": pte.read_bytes(), "pt2": pt2.read_bytes(), "ckpt": tiny_ckpt.read_bytes(),
        "manifest": (json.dumps(manifest, indent=2) + "\n").encode(), "report": json.dumps(report).encode(),
        "png": png.getvalue(), "apk": apk.getvalue(), "text": b"this is a shopping list, not a picture\n",
        "shapes": make_shapes_dataset(d / "shapes", train_per_class=2, val_per_class=1, size=32),
    }


# --------------------------------------------------------------------------- the commands


@dataclass(frozen=True)
class Target:
    """One command and the file argument the suite damages."""

    name: str
    filename: str  # the bad input's name (artifact names carry model/backend/quantization)
    kind: str  # key in ``valid`` of what the command expects
    wrong: str  # key in ``valid`` of a valid file of another kind
    argv: Callable[[Path, Path, dict], list[str]]  # (bad file, case folder, valid) -> arguments
    beside: tuple[str, ...] = ()  # valid files the case folder holds besides: "pte", "manifest", "png"
    optional: bool = False  # the command runs without the file: "missing" and "directory" are no mistake


def _out(d: Path, name: str = "out") -> str:
    return str(d / name)


TARGETS = [
    Target("bench X.pte", PTE, "pte", "pt2", lambda f, d, v: ["bench", str(f), *BENCH_FAST, "--out", _out(d)]),
    Target("bench X.pt2", "dotcom_tiny_xnnpack_q8.pt2", "pt2", "pte",
           lambda f, d, v: ["bench", str(f), *BENCH_FAST, "--out", _out(d)]),
    Target("bench --baseline eager --checkpoint", "weights.pth", "ckpt", "pt2",
           lambda f, d, v: ["bench", str(d / PTE), "--baseline", "eager", "--checkpoint", str(f), *BENCH_FAST,
                            "--out", _out(d)], beside=("pte", "manifest")),
    Target("bench X.pte (its manifest)", MANIFEST, "manifest", "report",
           lambda f, d, v: ["bench", str(d / PTE), *BENCH_FAST, "--out", _out(d)], beside=("pte",), optional=True),
    Target("eval --artifact", PTE, "pte", "pt2",
           lambda f, d, v: ["eval", "--artifact", str(f), "--data", str(v["shapes"]), "--out", _out(d, "acc.json"),
                            "--no-progress", "--workers", "0"], beside=("manifest",)),
    Target("eval --artifact (its manifest)", MANIFEST, "manifest", "report",
           lambda f, d, v: ["eval", "--artifact", str(d / PTE), "--data", str(v["shapes"]),
                            "--out", _out(d, "acc.json"), "--no-progress", "--workers", "0"], beside=("pte",)),
    Target("eval --checkpoint", "weights.pth", "ckpt", "pt2",
           lambda f, d, v: ["eval", "--checkpoint", str(f), "--data", str(v["shapes"]), "--out", _out(d, "acc.json"),
                            "--no-progress", "--workers", "0"]),
    Target("predict IMAGE", "photo.png", "png", "text", lambda f, d, v: ["predict", str(f), "--model", "dotcom_tiny"]),
    Target("predict --checkpoint", "weights.pth", "ckpt", "pt2",
           lambda f, d, v: ["predict", str(d / "photo.png"), "--checkpoint", str(f)], beside=("png",)),
    Target("quantize --checkpoint", "weights.pth", "ckpt", "pt2",
           lambda f, d, v: ["quantize", "--checkpoint", str(f), "--out", _out(d), "--no-progress", "--no-per-layer"]),
    Target("inspect activations --checkpoint", "weights.pth", "ckpt", "pt2",
           lambda f, d, v: ["inspect", "activations", "--checkpoint", str(f), "--images", str(v["shapes"]),
                            "--out", _out(d, "act.png")]),
    Target("export --quantized", "dotcom_tiny_xnnpack_q8.pt2", "pt2", "pte",
           lambda f, d, v: ["export", "--quantized", str(f), "--out", _out(d), "--no-progress"]),
    Target("export --checkpoint", "weights.pth", "ckpt", "pt2",
           lambda f, d, v: ["export", "--checkpoint", str(f), "--out", _out(d), "--no-progress"]),
    Target("report", "dotcom_tiny_xnnpack_fp32__python__t1.json", "report", "manifest",
           lambda f, d, v: ["report", str(f), "--out", _out(d, "report.md")]),
    Target("android push", PTE, "pte", "pt2", lambda f, d, v: ["android", "push", str(f)], beside=("manifest",)),
    Target("android push (its manifest)", MANIFEST, "manifest", "report",
           lambda f, d, v: ["android", "push", str(d / PTE)], beside=("pte",)),
    Target("android bench", PTE, "pte", "pt2", lambda f, d, v: ["android", "bench", str(f), "--out", _out(d)],
           beside=("manifest",)),
    Target("android install", "app-debug.apk", "apk", "pte", lambda f, d, v: ["android", "install", str(f)]),
    Target("ios bench", PTE, "pte", "pt2",
           lambda f, d, v: ["ios", "bench", str(f), "--device", "An iPhone", "--out", _out(d)], beside=("manifest",)),
    Target("train --resume", "last.pth", "ckpt", "pt2", lambda f, d, v: ["train", "--resume", str(f), "--no-progress"]),
    Target("train --init", "pretrained.pth", "ckpt", "pt2",
           lambda f, d, v: ["train", "--model", "dotcom_tiny", "--data", str(v["shapes"]), "--init", str(f),
                            "--out", _out(d), "--epochs", "1", "--warmup-epochs", "0", "--input-size", "32",
                            "--batch-size", "2", "--workers", "0", "--no-progress"]),
    Target("demo --checkpoint", "weights.pth", "ckpt", "pt2", lambda f, d, v: ["demo", "--checkpoint", str(f),
                                                                               "--out", _out(d)]),
]


# --------------------------------------------------------------------------- the checks


def _bad_input(path: Path, kind: str, target: Target, valid: dict) -> None:
    good = valid[target.kind]
    if kind == "missing":
        return
    if kind == "directory":
        path.mkdir()
        (path / "inside.txt").write_text("a folder where a file should be\n")
        return
    data = {"empty": b"", "random": random.Random(17).randbytes(5000), "truncated": good[: len(good) // 2],
            "wrong_kind": valid[target.wrong], "unreadable": good}[kind]
    path.write_bytes(data)
    if kind == "unreadable":
        path.chmod(0)


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its size and modification time: "left as it was"."""
    return {str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def _record(target: str, kind: str, line: str) -> None:
    table = os.environ.get("DOTCOM_BAD_INPUTS_TABLE")
    if table:
        with open(table, "a") as f:
            f.write(f"{target}\t{kind}\t{line}\n")


def one_error_line(err: str) -> str:
    """The single stderr line, which must start with ``Error:``."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    return lines[0]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_bad_file_gets_one_clear_line(target: Target, kind: str, valid, tmp_path, capfd, monkeypatch):
    if kind == "unreadable" and os.geteuid() == 0:
        pytest.skip("running as root: chmod 000 does not stop root from reading the file")
    if target.optional and kind in ("missing", "directory"):
        pytest.skip(f"{target.name} runs without it (the manifest beside a .pte is optional there)")
    case = tmp_path / "case"
    case.mkdir()
    for extra in target.beside:
        name = {"pte": PTE, "manifest": MANIFEST, "png": "photo.png"}[extra]
        (case / name).write_bytes(valid[extra])
    bad = case / target.filename
    _bad_input(bad, kind, target, valid)
    argv = target.argv(bad, case, valid)
    monkeypatch.chdir(case)  # default output folders land in the case folder too
    monkeypatch.setenv("ADB", str(tmp_path / "no-adb"))  # never a real phone
    before = _snapshot(case)
    capfd.readouterr()
    code = main(argv)
    out, err = capfd.readouterr()
    assert code != 0, out
    assert "Traceback" not in out + err
    line = one_error_line(err)
    assert bad.name in line, f"the line does not name {bad.name}: {line}"
    assert _snapshot(case) == before, f"{target.name} changed the case folder"
    _record(target.name, kind, line)


# --------------------------------------------------------------------------- generated JSON

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_LEAF = (st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False, allow_infinity=False)
         | st.text(max_size=12))
_JSON = st.recursive(_LEAF, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                        max_size=3), max_leaves=8)


def _node_paths(doc, prefix: tuple = ()) -> list[tuple]:
    paths = [prefix]
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        paths += _node_paths(value, (*prefix, key))
    return paths


@st.composite
def _mutated(draw, doc: dict):
    """``doc`` with one to three nodes deleted or replaced by arbitrary JSON."""
    doc = json.loads(json.dumps(doc))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_node_paths(doc)[1:] or [()]))
        if not path:
            return draw(_JSON)
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(_JSON)
    return doc


_SETTINGS = settings(max_examples=100, deadline=None, database=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _one_line_or_ok(code: int, err: str, *names: str) -> None:
    """Exit 0, or one ``Error:`` line that names one of ``names``."""
    assert "Traceback" not in err
    if code != 0:
        line = one_error_line(err)
        assert any(n in line for n in names), line


@pytest.mark.slow
@_SETTINGS
@given(data=st.data())
def test_generated_reports(valid, tmp_path_factory, capfd, data):
    report = data.draw(_mutated(json.loads(valid["report"])))
    d = tmp_path_factory.mktemp("report")
    f = d / "r__python__t1.json"
    f.write_text(json.dumps(report))
    capfd.readouterr()
    code = main(["report", str(f), "--out", str(d / "out" / "report.md")])
    _, err = capfd.readouterr()
    _one_line_or_ok(code, err, f.name)
    if code != 0:
        assert not (d / "out").exists()


@pytest.mark.slow
@_SETTINGS
@given(data=st.data())
def test_generated_manifests(valid, tmp_path_factory, capfd, monkeypatch, data):
    from dotcom_mobile.bench.runners import spec_for
    from dotcom_mobile.model import DotcomError

    manifest = data.draw(_mutated(json.loads(valid["manifest"])))
    d = tmp_path_factory.mktemp("manifest")
    (d / PTE).write_bytes(valid["pte"])
    (d / MANIFEST).write_text(json.dumps(manifest))
    monkeypatch.setenv("ADB", str(d / "no-adb"))
    capfd.readouterr()
    code = main(["android", "push", str(d / PTE)])  # eval --artifact validates with the same function
    _, err = capfd.readouterr()
    assert code != 0  # no phone: every manifest ends in some one-line error
    _one_line_or_ok(code, err, MANIFEST, "adb not found")
    try:  # what the baselines read from it
        spec_for(d / PTE)
    except DotcomError as e:
        assert "\n" not in str(e)


def test_a_line_break_inside_a_quoted_key_stays_on_the_error_line(valid, tmp_path, capfd, monkeypatch):
    """What test_generated_manifests found: a manifest key holding \\x1e, which str.splitlines
    breaks at, quoted in the schema error, printed the one error as two lines."""
    manifest = json.loads(valid["manifest"])
    manifest["versions"]["\x1e"] = False
    (tmp_path / PTE).write_bytes(valid["pte"])
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))
    monkeypatch.setenv("ADB", str(tmp_path / "no-adb"))
    capfd.readouterr()
    assert main(["android", "push", str(tmp_path / PTE)]) == 1
    line = one_error_line(capfd.readouterr().err)
    assert "invalid manifest at versions/\\x1e: False is not of type" in line


# --------------------------------------------------------------------------- crashes and noise


@pytest.fixture(scope="session")
def crashing_pte(toy, tmp_path_factory) -> Path:
    """A program ExecuTorch verifies but whose XNNPACK payloads it aborts on (their flatbuffer id is not text).

    The delegate's payload is the backend's format, not the program's: no check in the
    calling process sees it, so the runtime's SIGABRT has to be met in a child process.
    """
    data = toy["xnnpack"].read_bytes()
    assert data.count(b"XN01") >= 1
    path = tmp_path_factory.mktemp("crash") / PTE
    path.write_bytes(data.replace(b"XN01", b"\xea\xeb\xec\xed"))
    return path


@pytest.mark.slow
def test_runtime_crash_in_the_benchmark_child_is_one_line(crashing_pte, tmp_path, capfd):
    out = tmp_path / "reports"
    capfd.readouterr()
    code = main(["bench", str(crashing_pte), *BENCH_FAST, "--out", str(out)])
    _, err = capfd.readouterr()
    expected = f"{crashing_pte}: the ExecuTorch runtime crashed (SIGABRT) while loading or running it"
    assert code == 1 and one_error_line(err) == f"Error: 1 run(s) failed; first: {expected}"
    (report,) = [json.loads(p.read_text()) for p in out.glob("*.json")]  # the failed run leaves its trace
    assert report["status"] == "error" and report["error"] == expected


@pytest.mark.slow
def test_runtime_crash_is_probed_before_eval_loads_it(crashing_pte, valid, tmp_path, capfd):
    pte = tmp_path / PTE
    pte.write_bytes(crashing_pte.read_bytes())
    (tmp_path / MANIFEST).write_bytes(valid["manifest"])
    capfd.readouterr()
    code = main(["eval", "--artifact", str(pte), "--data", str(valid["shapes"]), "--no-progress", "--workers", "0"])
    _, err = capfd.readouterr()
    assert code == 1
    assert one_error_line(err) == f"Error: {pte}: the ExecuTorch runtime crashed (SIGABRT) while loading it"


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DOTCOM_VERBOSE"}
    return subprocess.run([sys.executable, "-m", "dotcom_mobile.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600, env=env)


@pytest.mark.slow
def test_the_issue_bad_pte_in_a_terminal(tmp_path):
    (tmp_path / "bad.pte").write_bytes(random.Random(17).randbytes(5000))
    proc = _cli(["bench", "bad.pte", "--out", "r1"], tmp_path)
    assert proc.returncode == 1
    assert proc.stderr == "Error: bad.pte is not an ExecuTorch program (no ET12 file identifier at byte 4)\n"
    assert not (tmp_path / "r1").exists()


@pytest.mark.slow
def test_import_noise_only_with_verbose(tmp_path):
    """torchao's import-time KernelPreference warning: hidden by default, shown by -v (a group option)."""
    (tmp_path / "q.pt2").write_bytes(b"")
    plain = _cli(["export", "--quantized", "q.pt2", "--out", "o"], tmp_path)
    assert plain.returncode == 1
    assert plain.stderr == "Error: q.pt2 is not a torch.export .pt2 file (not a zip archive)\n"
    loud = _cli(["-v", "export", "--quantized", "q.pt2", "--out", "o"], tmp_path)
    assert loud.returncode == 1 and "KernelPreference" in loud.stderr
    assert loud.stderr.splitlines()[-1] == plain.stderr.strip()
    assert not (tmp_path / "o").exists()


def test_quiet_known_noise_is_undone_by_verbose(monkeypatch):
    import logging

    from dotcom_mobile.export import noise

    monkeypatch.setenv(noise.ENV, "")  # restored after the test, whatever the calls below set
    # What an earlier call in this process saved as "before" (pytest runs many CLI calls in one
    # process; a quantize test may have lowered this logger first) is not this test's starting point.
    monkeypatch.setattr(noise, "_saved", {})
    log = logging.getLogger("torch.utils._pytree")
    monkeypatch.setattr(log, "level", logging.NOTSET)
    noise.quiet_known_noise()
    assert log.level == logging.ERROR and logging.getLogger("coremltools").level == logging.ERROR
    noise.quiet_known_noise(True)
    assert log.level == logging.NOTSET and os.environ[noise.ENV] == "1"  # children started now show them too
    assert noise.verbose_requested()
    monkeypatch.setenv(noise.ENV, "")
    noise.quiet_known_noise()
    assert log.level == logging.ERROR
