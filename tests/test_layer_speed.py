"""Per-layer fp32 vs int8 from ETDumps (perf/layer_speed.py) and ``quantize --keep-fp32-from`` (issue 13).

The table is measured on real programs: DoTCoM-Tiny at 64x64 exported in fp32 and
int8 with ETRecords, executed with ETDump on in ExecuTorch's Python runtime, one
thread. Nothing asserts a time: the rows, their attribution to real layers, the JSON
and the patterns are what is checked. The mixed-precision claim is checked on the
saved .pt2 graph (which convs/linears still have int8 weights).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dotcom_mobile.cli import main as cli_main
from dotcom_mobile.model import DotcomError
from dotcom_mobile.perf import layer_speed as ls

pytestmark = pytest.mark.usefixtures("one_thread")
SIZE = 64


# --------------------------------------------------------------------------- pure parts


def test_event_class_and_op_name():
    assert ls.event_class("Convolution (NHWC, QS8) IGEMM #1") == "gemm"
    assert ls.event_class("Fully Connected (NC, F32) GEMM #12") == "gemm"
    assert ls.event_class("Convert (NC, F32, QS8) #3") == "convert"
    assert ls.event_class("Static Reshape (NC) #2") == "reshape"
    assert ls.event_class("Batch Matrix Multiply (NC, F32) #1") == "bmm"

    # XNNPACK's name for its 8-bit table lookup (every int8 unary op) is replaced by what it is.
    assert ls.event_name("Invalid Unary Op #7") == "Lookup Table (NC, 8-bit unary) #7"
    assert ls.event_name("Invalid Unary Op") == "Lookup Table (NC, 8-bit unary)"
    assert ls.event_name("Sigmoid (NC) #2") == "Sigmoid (NC) #2"
    assert ls.event_class(ls.event_name("Invalid Unary Op #7")) == "lut"

    class Op:
        __name__ = "aten.convolution.default"

    assert ls.op_name(Op()) == "convolution"


def test_align_charges_unmatched_events_to_the_op_before():
    nodes = ["gemm", "sigmoid", "mul", "gemm", "add"]
    events = ["transpose", "gemm", "convert", "sigmoid", "mul", "convert", "gemm", "add"]
    assert ls.align(nodes, events) == [0, 0, 0, 1, 2, 2, 3, 4]


def test_operator_totals_group_events_by_kind():
    events = [("Convolution (NHWC, QC8) DWConv #1", 1.0), ("Softmax (NC, F32) #1", 0.5),
              ("Convolution (NHWC, QC8) DWConv #12", 0.25)]
    assert ls.operator_totals(events) == {"Convolution (NHWC, QC8) DWConv": (2, 1.25), "Softmax (NC, F32)": (1, 0.5)}


def _row(layer, f, q):
    return {"layer": layer, "fp32_ms": f, "int8_ms": q, "ratio": q / f if f and q is not None else None,
            "fp32_ops": 1, "int8_ops": 1}


def test_slow_layers_rules():
    rows = [_row("stem", 0.10, 0.20),                   # slower: kept
            _row("stages.0", 0.01, 0.05),               # a parent of other layers: its pattern would cover them
            _row("stages.0.conv_pw", 0.10, 0.05),       # faster in int8
            _row("stages.0.conv_dw", 0.0020, 0.0025),   # slower by 0.5 us: a tie at ETDump's resolution
            _row("stages.0.conv_pwl", 0.10, 0.105),     # slower, but within --margin 1.1
            _row("(top level)", 0.001, 0.01),           # no module to name
            _row("head", None, 0.01)]                   # not measured in fp32
    assert ls.slow_layers(rows) == ["stem", "stages.0.conv_pwl"]
    assert ls.slow_layers(rows, margin=1.1) == ["stem"]
    assert ls.slow_layers(rows, min_delta_ms=0.0) == ["stem", "stages.0.conv_dw", "stages.0.conv_pwl"]


def test_layer_speed_json_is_validated_with_the_field():
    with pytest.raises(DotcomError, match=r"^x\.json: field schema_version: "):
        ls.validate_layer_speed({"schema": ls.SCHEMA, "schema_version": 2, "threads": 1, "warmup": 0, "runs": 1,
                                 "fp32": {}, "int8": {}, "layers": [], "int8_slower": []}, source="x.json")


# --------------------------------------------------------------------------- real programs


@pytest.fixture(scope="module")
def programs(tiny_xnnpack_fp32, tiny_xnnpack_q8) -> dict[str, Path]:
    """The trained Tiny at 64x64: fp32 and int8 XNNPACK .pte with ETRecords, and the all-int8 .pt2
    (conftest's shared exports, which write their ETRecords for this module)."""
    pt2, int8 = tiny_xnnpack_q8
    return {"fp32": tiny_xnnpack_fp32.path, "int8": int8.path, "pt2": pt2}


def _graph_layers(etrecord: Path, ops: tuple[str, ...] | None = None) -> set[str]:
    """Layers of the ETRecord's graph (those holding one of ``ops``, if given)."""
    from dotcom_mobile.quantize.numerics import layer_of

    return {layer_of(n) for n in ls._graph_nodes(etrecord) if ops is None or ls.op_name(n.target) in ops}


@pytest.mark.slow
def test_per_layer_table_on_real_programs(programs, tmp_path, capsys):
    out_json, slow = tmp_path / "layers.json", tmp_path / "slow.json"
    rc = ls.main([str(programs["fp32"]), str(programs["int8"]), "--runs", "3", "--warmup", "1",
                  "--json", str(out_json), "--slow-out", str(slow)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    doc = ls.validate_layer_speed(json.loads(out_json.read_text()), source=str(out_json))
    assert json.loads(json.dumps(doc)) == doc  # round-trips
    rows = doc["layers"]
    names = [r["layer"] for r in rows]
    assert len(names) == len(set(names)) > 50  # one row per layer of Tiny
    real = _graph_layers(programs["fp32"].with_suffix(".etrecord")) | _graph_layers(programs["int8"].with_suffix(".etrecord"))
    assert set(names) <= real
    for layer in ("stem", "stages.0.conv_dw", "stages.2.2.transformer.0.mlp.fc1", "head"):
        assert layer in names
    for r in rows:
        assert all(r[k] is None or r[k] >= 0 for k in ("fp32_ms", "int8_ms")) and r["fp32_ops"] + r["int8_ops"] >= 1
    # Every convolution is a row. Not every one is measurable: ETDump's clock ticks in 1 us, and
    # on an AVX-512 VNNI EPYC a 1x1 int8 conv of stage 2 at 64x64 (4x4 tokens) took less than a
    # tick; so the check is that the stem conv and the convs in all take time in both programs.
    convs = _graph_layers(programs["fp32"].with_suffix(".etrecord"), ("convolution",))
    assert len(convs) > 50 and convs <= set(names)
    by_layer = {r["layer"]: r for r in rows}
    assert by_layer["stem"]["fp32_ms"] > 0 and by_layer["stem"]["int8_ms"] > 0, by_layer["stem"]
    for prog in ("fp32_ms", "int8_ms"):
        assert sum(by_layer[c][prog] or 0.0 for c in convs) > 0
    both = [r for r in rows if r["fp32_ms"] and r["int8_ms"]]
    assert len(both) >= 10 and all(r["ratio"] == pytest.approx(r["int8_ms"] / r["fp32_ms"]) for r in both)
    # The table printed the same rows, and the patterns file is exactly the JSON's slow list.
    lines = captured.out.splitlines()
    body = lines[2: lines.index("")]
    assert len(body) == len(names) and all(ln.startswith(n + " ") for ln, n in zip(body, names))
    assert json.loads(slow.read_text()) == doc["int8_slower"] == ls.slow_layers(rows)
    for prog in ("fp32", "int8"):
        assert 0 < doc[prog]["matched_events"] <= doc[prog]["events"]
    # Then the per-operator table: every XNNPACK operator kind of both programs, with its precision.
    ops_at = lines.index(next(ln for ln in lines if ln.startswith("XNNPACK operator")))
    kinds = {ln.split("  ")[0] for ln in lines[ops_at + 2:] if ln.strip()}
    assert "Softmax (NC, F32)" in kinds  # the attention's softmax: fp32 in both programs
    assert "Lookup Table (NC, 8-bit unary)" in kinds  # int8 SiLU, x * sigmoid(x) in one operator
    assert not any(k.startswith("Invalid") for k in kinds)
    assert any("QS8" in k or "QC8" in k for k in kinds) and any("F32" in k for k in kinds)


def test_native_runner_profiles_the_same_operators_as_python(programs, tmp_path):
    """``--runner native``: the C++ runner's ETDump holds the same XNNPACK operators, in the same order."""
    seqs = {}
    for runner in ("python", "native"):
        work = tmp_path / runner
        work.mkdir()
        events, execute_ms = ls.run_etdump(programs["int8"], (1, 3, SIZE, SIZE), threads=1, warmup=1, runs=2,
                                           workdir=work, runner=runner)
        assert execute_ms is not None and execute_ms > 0 and all(ms >= 0 for _, ms in events)
        seqs[runner] = [name for name, _ in events]
    assert seqs["native"] == seqs["python"] and any("QS8" in n or "QC8" in n for n in seqs["native"])
    # The pair, profiled in turn in one native runner process (two --model): each keeps its own events.
    f, q = ls.profile_pair(programs["fp32"], programs["int8"], threads=1, warmup=1, runs=2, runner="native")
    assert [k for k in q.operators] == list(ls.operator_totals(
        [(n, 0.0) for n in seqs["native"]]))  # the int8 program's operator kinds, in order of first use
    assert not any("QS8" in k or "QC8" in k for k in f.operators) and 0 < f.matched_events <= f.events
    with pytest.raises(DotcomError, match="unknown runner 'ios'"):
        ls.run_etdump(programs["int8"], (1, 3, SIZE, SIZE), threads=1, warmup=0, runs=1, workdir=tmp_path,
                      runner="ios")


def test_two_programs_profiled_in_turn_each_write_their_own_etdump(programs, tmp_path):
    """The Python runtime holds both programs at once and calls them in turn; the dumps do not mix."""
    etdps = [tmp_path / "fp32.etdp", tmp_path / "int8.etdp"]
    ls._python_etdumps([programs["fp32"], programs["int8"]], (1, 3, SIZE, SIZE), threads=1, runs=3, etdps=etdps)
    (f, f_ms), (q, q_ms) = (ls.read_etdump(e, 1, p) for e, p in zip(etdps, (programs["fp32"], programs["int8"])))
    assert f_ms > 0 and q_ms > 0
    assert not any("QS8" in n or "QC8" in n for n, _ in f) and any("QS8" in n or "QC8" in n for n, _ in q)
    alone, _ = ls.run_etdump(programs["int8"], (1, 3, SIZE, SIZE), threads=1, warmup=1, runs=2, workdir=tmp_path)
    assert [n for n, _ in q] == [n for n, _ in alone]


def test_programs_of_different_input_sizes_are_one_line(programs, tmp_path, capsys):
    """Copies of the int8 program whose manifest says 96x96: not the same model and size as the fp32 one."""
    stem = programs["int8"].stem
    for suffix in (".pte", ".etrecord", ".json"):
        src = programs["int8"].with_suffix(suffix)
        (tmp_path / src.name).write_bytes(src.read_bytes())
    manifest = json.loads((tmp_path / f"{stem}.json").read_text())
    manifest["input"]["shape"] = [1, 3, 96, 96]
    (tmp_path / f"{stem}.json").write_text(json.dumps(manifest))
    assert ls.main([str(programs["fp32"]), str(tmp_path / f"{stem}.pte")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"Error: {programs['fp32']} takes [1, 3, {SIZE}, {SIZE}] but {tmp_path / stem}.pte takes "
                   "[1, 3, 96, 96]: compare two programs of the same model and input size")


@pytest.mark.slow
def test_missing_etrecord_is_one_line(toy, capsys):
    assert ls.main([str(toy["xnnpack"]), str(toy["xnnpack"])]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: ") and "no ETRecord" in err and "export --etrecord" in err and "\n" not in err


def _fp32_weight_layers(pt2: Path) -> set[str]:
    """Layers with a conv or linear whose weight is not int8 (no per-channel dequantize feeds it)."""
    from dotcom_mobile.quantize import numerics
    from dotcom_mobile.quantize.api import load_quantized

    program, _ = load_quantized(pt2)
    out = set()
    for n in program.graph.nodes:
        if n.op == "call_function" and ls.op_name(n.target) in ("conv2d", "linear", "convolution"):
            w = n.args[1] if len(n.args) > 1 else None
            if not (hasattr(w, "target") and "dequantize_per_channel" in str(w.target)):
                out.add(numerics.layer_of(n))
    return out


@pytest.mark.slow
def test_quantize_keep_fp32_from_keeps_exactly_those_modules(programs, tmp_path):
    patterns = ["stages.0.conv_dw", "stages.2.2.transformer.0.mlp.fc1", "stem"]
    keep = ls.write_patterns(tmp_path / "slow.json", patterns)  # the file layer_speed --slow-out writes
    out = tmp_path / "q"
    rc = cli_main(["quantize", "--model", "dotcom_tiny", "--input-size", str(SIZE), "--num-calib", "4",
                   "--no-per-layer", "--no-progress", "--keep-fp32-from", str(keep), "--out", str(out)])
    assert rc == 0
    baseline = _fp32_weight_layers(programs["pt2"])
    mixed = _fp32_weight_layers(out / "dotcom_tiny_xnnpack_q8.pt2")
    assert mixed - baseline == set(patterns) and baseline <= mixed
    report = json.loads((out / "quant_report.json").read_text())
    assert report["mixed_precision"]["keep_fp32_modules"] == patterns


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    ("{not json", "not a JSON list of module patterns"),
    ('{"int8_slower": ["stem"]}', "expected a JSON list of module patterns"),
    ('["stem", 3]', "expected a JSON list of module patterns"),
])
def test_keep_fp32_from_bad_file_is_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "keep.json"
    if content is not None:
        path.write_text(content)
    rc = cli_main(["quantize", "--model", "dotcom_tiny", "--keep-fp32-from", str(path), "--out", str(tmp_path / "q")])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and err.startswith(f"Error: {path}: ") and message in err and "\n" not in err
    assert not (tmp_path / "q").exists()  # nothing half-written
