"""``dotcom-mobile report``: latency reports from every runner into one table and two plots.

Top level imports only click and the standard library so ``--help`` is instant; the
work lives in :mod:`.collect` (reading and validating) and :mod:`.render`.
"""

from __future__ import annotations

from pathlib import Path

import click

REPORT_HELP = """Aggregate latency reports into one table and two plots.

\b
Reads latency reports (any runner), ExecuTorch benchmark-app benchmark_results.json
files (converted) and accuracy files from `dotcom-mobile eval --json`, given as files
or folders (searched recursively; other JSON such as manifests is skipped). Writes
the table (--out .md or .html) and, beside it, <stem>_latency_vs_params.png and
<stem>_latency_distribution.png. Rows are grouped by device, backend and
quantization; the paper's latency and top-1 sit beside each row.
A malformed report stops the command with the file and the failing field; inputs
are never modified.

\b
Examples:
  dotcom-mobile report dotcom_mobile_out/reports
  dotcom-mobile report reports/ phone/benchmark_results.json --out report.html
  dotcom-mobile report reports/ acc.json --out summary.md
"""


@click.command("report", help=REPORT_HELP, no_args_is_help=True)
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("report.md"), show_default=True,
              help="Output table: .md (Markdown) or .html; the PNGs go beside it.")
@click.option("--skip-invalid", is_flag=True, help="Warn about malformed reports and render the rest instead of stopping.")
def report(inputs: tuple[Path, ...], out: Path, skip_invalid: bool) -> None:
    from dotcom_mobile.model.errors import DotcomError

    from .collect import collect_inputs
    from .render import markdown_table, write_report

    if out.suffix.lower() not in (".md", ".markdown", ".html", ".htm"):
        raise DotcomError(f"--out {out}: use a .md or .html file name")
    found = collect_inputs(inputs)
    if found.invalid and not skip_invalid:
        first = found.invalid[0][1]
        more = f" (and {len(found.invalid) - 1} more; --skip-invalid renders the rest)" if len(found.invalid) > 1 else ""
        raise DotcomError(first + more)
    for _, msg in found.invalid:
        click.secho(f"skipped: {msg}", fg="yellow", err=True)
    if not found.reports:
        raise DotcomError("no latency reports found in " + ", ".join(map(str, inputs)))
    sources = {p.resolve() for p, _ in found.reports} | {p.resolve() for p, _ in found.accuracy}
    if out.resolve() in sources:
        raise DotcomError(f"--out {out} is one of the inputs; choose another file name")
    reports = [r for _, r in found.reports]
    accuracy = [a for _, a in found.accuracy]
    written = write_report(reports, out, accuracy)
    click.echo(markdown_table(reports, accuracy))
    click.echo("\nwrote " + ", ".join(str(p) for p in written))
