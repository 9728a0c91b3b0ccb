"""``dotcom-mobile bench``.

Top level imports only click and the standard library so ``--help`` is instant; the
work lives in :mod:`.suite` and :mod:`.runners`, the table in :mod:`dotcom_mobile.report.render`.
"""

from __future__ import annotations

from pathlib import Path

import click

BENCH_HELP = """Benchmark .pte artifacts and write one latency report per artifact and configuration.

\b
Each ARTIFACT is loaded, warmed up, then timed for --repeats blocks of --iters calls;
every sample goes into <out>/<artifact-stem>__<runner>__t<threads>.json
(latency-report v1, report/schemas). A quantized .pt2 from `dotcom-mobile quantize`
is run in PyTorch. Baselines run the same network (from the manifest beside the
.pte, with --checkpoint for its weights) in PyTorch eager or ONNX Runtime.

\b
Examples:
  dotcom-mobile bench out/dotcom_tiny_xnnpack_q8.pte
  dotcom-mobile bench out/*.pte --threads 1,2 --baseline eager --baseline onnxruntime
  dotcom-mobile bench out/dotcom_tiny_xnnpack_fp32.pte --runner native --iters 100
  dotcom-mobile bench out/dotcom_tiny_xnnpack_q8.pt2 --threads 2
  dotcom-mobile bench fp32/dotcom_tiny_xnnpack_fp32.pte q8/dotcom_tiny_xnnpack_q8.pte --in-turn
"""


@click.command("bench", help=BENCH_HELP, no_args_is_help=True)
@click.argument("artifacts", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--runner", type=click.Choice(["python", "native"]), default="python", show_default=True,
              help="python: ExecuTorch's Python runtime (a fresh process per run, see --in-process). native: the C++ "
                   "runner in runner/ (built on first use).")
@click.option("--threads", default="1,2", show_default=True,
              help="Comma-separated XNNPACK/PyTorch/ORT thread counts; one report each. 0 = the runtime's default.")
@click.option("--warmup", type=click.IntRange(min=0), default=10, show_default=True,
              help="Untimed calls after loading (the first one is reported as first_inference_ms).")
@click.option("--iters", type=click.IntRange(min=1), default=50, show_default=True, help="Timed calls per repeat.")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True,
              help="Blocks of --iters timed calls; all samples are kept in the report.")
@click.option("--baseline", "baselines", multiple=True, type=click.Choice(["eager", "onnxruntime"]),
              help="Also time the same network in PyTorch eager (fp32) or ONNX Runtime (fp32, or static int8 "
                   "QDQ for a q8 artifact). Repeatable.")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Weights for the baselines (latency does not depend on them; outputs do).")
@click.option("--input", "input_kind", type=click.Choice(["random", "zeros"]), default="random", show_default=True,
              help="Input tensor: seeded N(0,1) or zeros.")
@click.option("--cooldown", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Seconds to sleep between repeats (phones: lets the SoC cool).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("dotcom_mobile_out/reports"), show_default=True, help="Folder for the reports (and ONNX files).")
@click.option("--in-process", is_flag=True,
              help="Run the Python, eager and ONNX Runtime benchmarks inside this process instead of one fresh "
                   "process each: saves an interpreter start (~2-4 s) per run, but peak memory then includes "
                   "whatever this process held before (memory_scope in_process).")
@click.option("--in-turn", is_flag=True,
              help="Time the .pte artifacts together: all loaded in one process, each called once per step, so a "
                   "busy spell of the machine lands on all of them and their ratio (int8/fp32) holds. Reports are "
                   "<stem>__<runner>-in-turn__t<threads>.json and name the others (protocol.in_turn_with).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar.")
@click.option("--quiet", is_flag=True, hidden=True)  # the old spelling of --no-progress
def bench(artifacts: tuple[Path, ...], runner: str, threads: str, warmup: int, iters: int, repeats: int,
          baselines: tuple[str, ...], checkpoint: Path | None, input_kind: str, cooldown: float, out_dir: Path,
          in_process: bool, in_turn: bool, progress: bool, quiet: bool) -> None:
    from dotcom_mobile.model.errors import DotcomError
    from dotcom_mobile.report.render import text_table

    from .suite import Protocol, execute, parse_threads, plan

    protocol = Protocol(warmup, iters, repeats, input_kind, cooldown, isolate=not in_process)
    jobs = plan(artifacts, runner=runner, threads=parse_threads(threads), protocol=protocol,
                baselines=baselines, checkpoint=checkpoint, cache_dir=out_dir, in_turn=in_turn)
    outcome = execute(jobs, out_dir, protocol=protocol, progress=progress and not quiet)
    click.echo(text_table(outcome.reports))
    click.echo(f"\n{len(outcome.paths)} report(s) in {out_dir}/")
    if outcome.errors:
        raise DotcomError(f"{len(outcome.errors)} run(s) failed; first: {outcome.errors[0]}")
