"""``dotcom-mobile demo``: the whole pipeline on DoTCoM-Tiny in a few minutes.

calibration images -> int8 PTQ (torchao PT2E, XNNPACK quantizer) -> ExecuTorch XNNPACK
fp32 and int8 .pte -> benchmark both plus PyTorch eager on this machine -> one report.
Everything lands in one output folder; run it again and it is rebuilt (``--reuse``
keeps artifacts already there).

Without ``--calib`` the calibration images are generated (coloured shapes, see
:mod:`dotcom_mobile.train.synthetic`). That is enough to show the pipeline and to
measure latency (which does not depend on the weights or the scales), not to judge
int8 accuracy: the warning says so.
"""

from __future__ import annotations

from pathlib import Path

import click

DEMO_HELP = """The main job: quantize, export, benchmark and report DoTCoM-Tiny on this machine.

\b
Steps (all files under --out):
  1. calibration images: --calib DIR, or 16 generated shapes images (warned: synthetic)
  2. int8 post-training quantization for XNNPACK      -> <model>_xnnpack_q8.pt2
     (the fp32 export runs alongside, in a second process)
  3. ExecuTorch export, XNNPACK fp32 and int8          -> <model>_xnnpack_{fp32,q8}.pte + .json
  4. benchmark both .pte (Python runtime) and PyTorch eager at each --threads,
     each run in a fresh process so its peak memory is its own
                                                       -> reports/*.json
     then int8/fp32 with both .pte called in turn (a ratio the host's load
     cannot tilt)
  5. report table and plots                            -> report.md, report_*.png

\b
Examples:
  dotcom-mobile demo
  dotcom-mobile demo --calib ~/imagenet_val_subset --checkpoint dotcom_tiny.pth
  dotcom-mobile demo --threads 1,2 --iters 50 --repeats 3 --out /tmp/demo
"""


class _Steps:
    """Prints ``[n/5] text``, a heartbeat line while a step runs, and each step's seconds.

    The heartbeat (``... quantize 20 s``) comes every ``heartbeat_s`` seconds from a
    daemon thread, so a long lowering that prints nothing itself still shows it is alive.
    """

    def __init__(self, heartbeat_s: float = 10.0) -> None:
        import threading
        import time

        self._clock = time.perf_counter
        self._start = self._clock()
        self._current: tuple[str, float] | None = None
        self.seconds: dict[str, float] = {}
        self._heartbeat_s = heartbeat_s
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="demo-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._wake.wait(self._heartbeat_s):
            current = self._current
            if current is not None:
                click.echo(f"      ... {current[0]} {self._clock() - current[1]:.0f} s", err=True)

    def __call__(self, n: int, name: str, text: str) -> None:
        self.done()
        click.secho(f"[{n}/5] {text}", bold=True, err=True)
        self._current = (name, self._clock())

    def done(self) -> None:
        if self._current is not None:
            name, t0 = self._current
            self.seconds[name] = self._clock() - t0
            self._current = None

    def close(self) -> None:
        self.done()
        self._wake.set()

    def summary(self) -> str:
        self.close()
        parts = ", ".join(f"{k} {v:.0f} s" for k, v in self.seconds.items())
        return f"done in {self._clock() - self._start:.0f} s ({parts})"


@click.command("demo", help=DEMO_HELP)
@click.option("--model", default=None, help="Variant to run the pipeline on [default: the one --checkpoint holds, "
                                            "else dotcom_tiny].")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Trained weights (default: random init, fine for latency, meaningless for accuracy).")
@click.option("--calib", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder of calibration images (~256 representative ones). Default: generated shapes.")
@click.option("--num-calib", type=click.IntRange(min=1), default=16, show_default=True,
              help="Calibration images to use. The default keeps the demo short (histogram observers at 256x256 "
                   "cost ~25 s per 16 images here, and the quality check runs on the same images); latency does "
                   "not depend on it. Use --calib DIR --num-calib 256 for a deployable model.")
@click.option("--input-size", type=click.IntRange(min=32), default=256, show_default=True,
              help="Square input side (multiple of 32); the paper uses 256.")
@click.option("--threads", default="1,2", show_default=True, help="Thread counts to benchmark, comma-separated.")
@click.option("--warmup", type=click.IntRange(min=0), default=5, show_default=True, help="Untimed calls after loading.")
@click.option("--iters", type=click.IntRange(min=1), default=20, show_default=True, help="Timed calls per repeat.")
@click.option("--repeats", type=click.IntRange(min=1), default=2, show_default=True, help="Blocks of timed calls.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("dotcom_mobile_out"),
              show_default=True, help="Output folder for everything the demo writes.")
@click.option("--reuse", is_flag=True, help="Keep the .pt2/.pte already in --out instead of rebuilding them.")
def demo(model: str, checkpoint: Path | None, calib: Path | None, num_calib: int, input_size: int, threads: str,
         warmup: int, iters: int, repeats: int, out_dir: Path, reuse: bool) -> None:
    from dotcom_mobile.bench.in_turn import ratio_line, time_in_child
    from dotcom_mobile.bench.suite import Protocol, execute, parse_threads, plan
    from dotcom_mobile.model import check_input_size
    from dotcom_mobile.model.introspect import checkpoint_facts, choose_model
    from dotcom_mobile.report.render import text_table, write_report

    step = _Steps()
    click.get_current_context().call_on_close(step.close)  # the heartbeat stops on errors too
    # Read the checkpoint before anything is written: a broken one is one line and an untouched --out.
    model = choose_model(model, checkpoint_facts(checkpoint) if checkpoint is not None else None, default="dotcom_tiny")
    check_input_size(input_size, input_size)
    thread_list = parse_threads(threads)
    out_dir.mkdir(parents=True, exist_ok=True)

    step(1, "calibration", "calibration images")
    calib_dir = calib if calib is not None else _synthetic_calibration(out_dir / "calib", input_size, num_calib)

    # The fp32 export does not depend on quantization: lower it in a second process
    # meanwhile. Lowering is mostly single-threaded Python, so on a 2-core machine it
    # overlaps with calibration instead of adding its minute or more after it.
    fp32 = out_dir / f"{model}_xnnpack_fp32.pte"
    fp32_job = None
    if not (reuse and fp32.exists() and fp32.with_suffix(".json").exists()):
        fp32_job = _start_fp32_export(model, checkpoint, input_size, out_dir)

    step(2, "quantize", f"int8 quantization of {model} for XNNPACK ({num_calib} calibration images; "
                        f"fp32 export running alongside)" if fp32_job else
         f"int8 quantization of {model} for XNNPACK ({num_calib} calibration images)")
    pt2 = out_dir / f"{model}_xnnpack_q8.pt2"
    try:
        if not (reuse and pt2.exists()):
            from dotcom_mobile.quantize.api import quantize_model

            result = quantize_model(model, checkpoint=checkpoint, backend="xnnpack", calib=calib_dir,
                                    num_calib=num_calib, out_dir=out_dir, input_size=input_size, progress=True,
                                    per_layer=False)  # the demo shows latency; `quantize` shows the layers
            pt2 = Path(result.pt2_path)
    except BaseException:
        if fp32_job is not None:
            fp32_job.kill()
            fp32_job.wait()
        raise
    click.echo(f"      {pt2}", err=True)

    step(3, "export", "ExecuTorch export: XNNPACK int8 (and waiting for fp32)")
    from dotcom_mobile.export.api import export_model

    q8 = out_dir / f"{model}_xnnpack_q8.pte"
    if not (reuse and q8.exists() and q8.with_suffix(".json").exists()):
        q8 = Path(export_model(quantized=pt2, target="xnnpack", out_dir=out_dir, progress=True)[0].path)
    if fp32_job is not None:
        _finish(fp32_job, out_dir / "export_fp32.log")
    artifacts = [fp32, q8]
    for a in artifacts:
        click.echo(f"      {a}", err=True)

    step(4, "bench", f"benchmark on this machine (threads {','.join(map(str, thread_list))}, "
             f"{warmup} warm-up, {repeats}x{iters} timed)")
    protocol = Protocol(warmup=warmup, iters=iters, repeats=repeats)
    jobs = plan(artifacts, runner="python", threads=thread_list, protocol=protocol, baselines=("eager",),
                checkpoint=checkpoint, cache_dir=out_dir)
    outcome = execute(jobs, out_dir / "reports", protocol=protocol)
    # The table's runs are one after the other, each in its own process (honest peak memory),
    # so their ratio moves with the host's load; this one calls both programs in turn.
    calls = iters * repeats
    in_turn = {} if outcome.errors else {
        t: tuple(time_in_child([fp32, q8], t, [1, 3, input_size, input_size], warmup, calls)) for t in thread_list}

    step(5, "report", "report")
    written = write_report(outcome.reports, out_dir / "report.md")
    columns = ("artifact", "runner", "thr", "cpu kind", "p50 ms", "p90 ms", "spread", "load ms", "peak MB", "delegated", "GMAC/s",
               "paper ms")
    click.echo(text_table(outcome.reports, columns))
    if in_turn:
        click.echo("\n" + ratio_line(in_turn, calls))
    click.echo(f"\nreports: {out_dir / 'reports'}/   table and plots: {', '.join(str(p) for p in written)}")
    click.echo(step.summary())
    if outcome.errors:
        from dotcom_mobile.model.errors import DotcomError

        raise DotcomError(f"{len(outcome.errors)} benchmark run(s) failed; first: {outcome.errors[0]}")


def _start_fp32_export(model: str, checkpoint: Path | None, input_size: int, out_dir: Path):
    """``dotcom-mobile export`` of the fp32 .pte in a child process (log in ``out_dir/export_fp32.log``)."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "dotcom_mobile.cli", "export", "--model", model, "--target", "xnnpack",
           "--input-size", str(input_size), "--out", str(out_dir), "--no-progress"]
    if checkpoint is not None:
        cmd += ["--checkpoint", str(checkpoint)]
    log = open(out_dir / "export_fp32.log", "w")
    try:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()  # the child holds its own descriptor


def _finish(job, log: Path) -> None:
    """Wait for the fp32 export; its one-line error (the CLI prints ``Error: ...``) becomes ours."""
    from dotcom_mobile.model.errors import DotcomError

    if job.wait() != 0:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        why = next((ln[len("Error: "):] for ln in reversed(lines) if ln.startswith("Error: ")), None)
        raise DotcomError(f"fp32 export failed: {why or (lines[-1] if lines else f'exit code {job.returncode}')} "
                          f"(log: {log})")


def _synthetic_calibration(root: Path, size: int, count: int) -> Path:
    """Generated shapes images at the model's input size; warns that they are synthetic."""
    from dotcom_mobile.train.synthetic import make_shapes_dataset

    click.secho(
        "warning: no --calib folder given; calibrating on generated shapes images. The int8 scales will fit "
        "those, not real photos: latency is representative, accuracy is not. Pass --calib DIR with ~256 "
        "images from your target domain for a deployable model.", fg="yellow", err=True)
    per_class = max(1, -(-count // 4))
    train = root / "train"
    if not (train.is_dir() and sum(1 for _ in train.rglob("*.png")) >= count):
        make_shapes_dataset(root, num_classes=4, train_per_class=per_class, val_per_class=1, size=size, seed=0)
    return train
