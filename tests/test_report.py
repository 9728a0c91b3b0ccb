"""latency-report v1: building, validating, minibench conversion and the `report` command."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest

from dotcom_mobile.cli import main as cli_main
from dotcom_mobile.model import DotcomError
from dotcom_mobile.report.collect import collect_inputs
from dotcom_mobile.report.latency import make_report, report_filename, validate_report, write_json_atomic
from dotcom_mobile.report.minibench import convert_minibench


def _report(name: str, runner: str = "python", threads: int = 2, lat=(10.0, 11.0, 12.0, 30.0), **artifact) -> dict:
    art = {"name": name, "backend": "xnnpack", "quantization": "fp32", "model": "dotcom_tiny",
           "input_shape": [1, 3, 256, 256], "params": 1_731_064, "macs": 693_128_192, **artifact}
    return make_report(artifact=art, runner=runner, threads=threads, warmup=2, iterations=len(lat), repeats=1,
                       latencies_ms=list(lat), load_ms=5.0, first_inference_ms=14.0, peak_memory_bytes=50 << 20,
                       delegation={"delegated_nodes": 871, "total_nodes": 872, "fraction": 871 / 872, "partitions": 1,
                                   "non_delegated_ops": {}})


# Written the way ExecuTorch's Android benchmark app (org.pytorch.minibench) serialises its
# BenchmarkMetric list with Gson: one object per metric, model name/backend/quantization
# parsed from the file name, deviceInfo on every entry.
def _minibench(name="dotcom_tiny", backend="xnnpack", quant="q8", load_status=0) -> list[dict]:
    dev = {"device": "google", "arch": "Pixel 8", "os": "Android 14", "totalMem": 8_000_000_000, "availMem": 3_000_000_000}
    bm = {"name": name, "backend": backend, "quantization": quant}
    metrics = {"avg_inference_latency(ms)": 21.5, "trimmean_inference_latency(ms)": 20.25,
               "model_load_time(ms)": 35.0, "load_status": load_status, "ram_pss_usage(mb)": 40.5}
    return [{"benchmarkModel": bm, "metric": k, "actualValue": v, "targetValue": 0.0, "deviceInfo": dev}
            for k, v in metrics.items()]


def test_make_report_statistics_and_name():
    r = _report("dotcom_tiny_xnnpack_fp32.pte", lat=(3.0, 1.0))
    assert r["status"] == "ok" and r["error"] is None
    assert r["results"]["p50_ms"] == 2.0 and r["results"]["p90_ms"] == pytest.approx(2.8)
    assert r["results"]["latencies_ms"] == [3.0, 1.0]
    assert r["device"]["threads"] == 2 and r["device"]["cores"] >= 1
    assert report_filename(r) == "dotcom_tiny_xnnpack_fp32__python__t2.json"


def test_error_report_has_no_results():
    r = make_report(artifact={"name": "x.pte", "backend": "xnnpack", "quantization": "fp32"}, runner="python",
                    threads=1, warmup=0, iterations=1, repeats=1, latencies_ms=None, error="x.pte: bad file")
    assert r["status"] == "error" and r["results"] is None and r["error"] == "x.pte: bad file"


@pytest.mark.parametrize("mutate, field", [
    (lambda r: r["results"].pop("p50_ms"), "results.p50_ms"),
    (lambda r: r["runtime"].update(runner="tflite"), "runtime.runner"),
    (lambda r: r["protocol"].update(iterations=-1), "protocol.iterations"),
    (lambda r: r["results"]["latencies_ms"].append("fast"), "results.latencies_ms[4]"),
    (lambda r: r.pop("device"), "device"),
])
def test_validate_names_the_file_and_field(tmp_path, mutate, field):
    bad = copy.deepcopy(_report("a.pte"))
    mutate(bad)
    path = write_json_atomic(tmp_path / "bad.json", bad)
    with pytest.raises(DotcomError) as e:
        validate_report(path)
    msg = str(e.value)
    assert str(path) in msg and f"field {field}:" in msg and "\n" not in msg


def test_validate_rejects_broken_json(tmp_path):
    path = tmp_path / "trunc.json"
    path.write_text(json.dumps(_report("a.pte"))[:100])
    with pytest.raises(DotcomError, match=r"trunc\.json: field <root>: not valid JSON"):
        validate_report(path)


def test_minibench_conversion(tmp_path):
    path = tmp_path / "benchmark_results.json"
    path.write_text(json.dumps(_minibench() + _minibench("dotcom_small", load_status=1)))
    reports = convert_minibench(path)
    assert len(reports) == 2
    ok, failed = reports
    assert ok["device"]["platform"] == "android" and "Pixel 8" in ok["device"]["model"]
    assert ok["artifact"]["name"] == "dotcom_tiny_xnnpack_q8.pte" and ok["artifact"]["quantization"] == "q8"
    assert ok["results"]["trimmed_mean_ms"] == 20.25 and ok["results"]["mean_ms"] == 21.5
    assert ok["results"]["load_ms"] == 35.0 and ok["results"]["peak_memory_bytes"] == int(40.5 * 2**20)
    assert ok["results"]["latencies_ms"] == [] and ok["results"]["summary_only"] is True
    assert "summary only" in ok["source"]
    # Nothing the app did not measure is invented: no percentiles, min, max or stddev.
    assert all(ok["results"][k] is None for k in ("p50_ms", "p90_ms", "p99_ms", "min_ms", "max_ms", "stddev_ms"))
    assert ok["results"]["memory_scope"] == "increase"  # ram_pss_usage is PSS after minus PSS before loading
    assert ok["protocol"]["clock"] == "System.nanoTime" and ok["protocol"]["iterations"] == 0
    assert failed["status"] == "error" and "load_status 1" in failed["error"] and "35.0 ms" in failed["error"]
    for r in reports:
        validate_report(r)


def test_null_statistics_need_summary_only():
    """A report with samples must carry its statistics; only a summary-only one may leave them null."""
    r = _report("dotcom_tiny_xnnpack_fp32.pte")
    r["results"]["p90_ms"] = None
    with pytest.raises(DotcomError, match="results"):
        validate_report(r)
    r["results"]["summary_only"] = True
    validate_report(r)


def test_minibench_row_renders_trimmed_mean_without_fake_spread(tmp_path):
    from dotcom_mobile.report.render import markdown_table, row, text_table

    ok = convert_minibench(_minibench())[0]
    cells = row(ok)
    assert cells["p50 ms"] == "~20.25"  # the trimmed mean, marked approximate
    assert cells["p90 ms"] == "-" and cells["spread"] == "-"
    assert cells["load ms"] == "35.0" and cells["peak MB"] == "+40"
    assert cells["GMAC/s"] == "-"  # no MACs known for a converted file
    table = text_table([ok, _report("dotcom_tiny_xnnpack_fp32.pte")])
    assert "~20.25" in table and "None" not in table
    assert "None" not in markdown_table([ok])


def test_minibench_bad_value_names_field(tmp_path):
    data = _minibench()
    data[0]["actualValue"] = "n/a"
    path = tmp_path / "benchmark_results.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DotcomError, match=r"benchmark_results\.json: field avg_inference_latency\(ms\)\.actualValue"):
        convert_minibench(path)


@pytest.fixture
def report_dir(tmp_path) -> Path:
    d = tmp_path / "reports"
    for r in (_report("dotcom_tiny_xnnpack_fp32.pte", threads=1), _report("dotcom_tiny_xnnpack_fp32.pte", threads=2),
              _report("dotcom_tiny_xnnpack_q8.pte", quantization="q8", lat=(4.0, 5.0, 6.0)),
              _report("dotcom_tiny_eager_fp32", runner="eager", backend="eager", lat=(40.0, 41.0))):
        write_json_atomic(d / report_filename(r), r)
    (d / "phone").mkdir()
    (d / "phone" / "benchmark_results.json").write_text(json.dumps(_minibench()))
    # A manifest beside an artifact is not a report: skipped, not an error.
    (d / "dotcom_tiny_xnnpack_fp32.json").write_text(json.dumps({"schema": "dotcom-mobile/manifest", "schema_version": 1}))
    (d / "acc.json").write_text(json.dumps({"kind": "accuracy", "model": "dotcom_tiny", "artifact": "dotcom_tiny_xnnpack_q8.pte",
                                            "backend": "xnnpack", "quantization": "q8", "top1": 0.731, "top5": 0.9,
                                            "loss": 1.2, "count": 500}))
    return d


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_report_renders_table_and_pngs(report_dir, tmp_path, capsys):
    before = _digest(report_dir)
    out = tmp_path / "site" / "summary.md"
    assert cli_main(["report", str(report_dir), "--out", str(out)]) == 0
    text = out.read_text()
    assert "dotcom_tiny_xnnpack_q8.pte" in text and "dotcom_tiny_eager_fp32" in text
    assert "google Pixel 8" in text and "~20.25" in text  # the converted minibench row, marked approximate
    assert "| 73.1 |" in text  # accuracy JSON joined on the artifact name
    assert "| 23 | 74.0 |" in text  # the paper's Tiny latency and top-1 beside our rows
    for png in ("summary_latency_vs_params.png", "summary_latency_distribution.png"):
        data = (out.parent / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
        assert f"]({png})" in text
    assert _digest(report_dir) == before  # inputs untouched
    assert "dotcom_tiny_xnnpack_q8.pte" in capsys.readouterr().out

    html = tmp_path / "r.html"
    assert cli_main(["report", str(report_dir), "--out", str(html)]) == 0
    assert "<table>" in html.read_text() and (tmp_path / "r_latency_vs_params.png").exists()


def test_report_rejects_malformed_and_keeps_folder(report_dir, tmp_path, capsys):
    bad = json.loads((report_dir / "dotcom_tiny_xnnpack_q8__python__t2.json").read_text())
    del bad["results"]["p90_ms"]
    (report_dir / "broken__python__t2.json").write_text(json.dumps(bad))
    before = _digest(report_dir)
    out = tmp_path / "r.md"
    assert cli_main(["report", str(report_dir), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: ") and "broken__python__t2.json" in err and "results.p90_ms" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not out.exists() and _digest(report_dir) == before

    # --skip-invalid renders the rest and says what it skipped
    assert cli_main(["report", str(report_dir), "--out", str(out), "--skip-invalid"]) == 0
    assert "broken__python__t2.json" in capsys.readouterr().err and out.exists()


def test_report_refuses_to_overwrite_an_input(report_dir, capsys):
    target = report_dir / "acc.json"
    before = target.read_bytes()
    assert cli_main(["report", str(report_dir), "--out", str(target.with_suffix(".md"))]) == 0  # a new file is fine
    assert cli_main(["report", str(report_dir / "acc.json"), str(report_dir), "--out", str(target)]) != 0
    assert target.read_bytes() == before


def test_collect_inputs_explicit_unknown_file_is_an_error(tmp_path):
    p = tmp_path / "other.json"
    p.write_text(json.dumps({"hello": 1}))
    found = collect_inputs([p])
    assert found.invalid and "not a latency report" in found.invalid[0][1]
