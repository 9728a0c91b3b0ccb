"""Every ``--help`` answers without importing torch (it costs seconds; help should not).

One fresh interpreter asks for the group's help, then each command's and each
sub-command's, through the console entry point (``cli.main``), and says after each
whether torch has been imported by then. Torch-free help is what makes
``dotcom-mobile predict --help`` answer in well under a second rather than five.
"""

from __future__ import annotations

import subprocess
import sys

from dotcom_mobile.cli import COMMANDS

CODE = """
import contextlib, io, sys
import click
from dotcom_mobile.cli import COMMANDS, cli, main

def every_help():
    yield []
    for name in COMMANDS:
        yield [name]
        cmd = cli.get_command(click.Context(cli), name)
        for sub in getattr(cmd, "commands", {}):  # android, ios, inspect are groups
            yield [name, sub]

for argv in every_help():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main([*argv, "--help"])
    print("/".join(argv) or "<group>", rc, "torch" in sys.modules, "Usage:" in out.getvalue(), flush=True)
"""


def test_every_help_answers_without_torch():
    proc = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines()]
    seen = {r[0] for r in rows}
    assert {"<group>", *COMMANDS, "android/bench", "ios/bench", "inspect/activations"} <= seen, seen
    heavy = [name for name, rc, torch, usage in rows if torch == "True"]
    assert not heavy, f"--help imported torch, first at: {heavy[0]}"
    assert all(rc == "0" and usage == "True" for _, rc, _, usage in rows), proc.stdout


def test_the_progress_switch_has_one_spelling_on_every_command():
    """``--no-progress`` silences the bars of every command that draws them (``--quiet`` was
    export's and bench's word for it; it still works there, but only one spelling is shown)."""
    import click

    from dotcom_mobile.cli import cli

    with_bars, shown_quiet = set(), []
    for name in COMMANDS:
        cmd = cli.get_command(click.Context(cli), name)
        for sub_name, sub in [(name, cmd), *((f"{name} {k}", v) for k, v in getattr(cmd, "commands", {}).items())]:
            for p in sub.params:
                if p.name == "progress":
                    assert p.opts == ["--progress"] and p.secondary_opts == ["--no-progress"], (sub_name, p.opts)
                    with_bars.add(sub_name)
                if "--quiet" in p.opts and not getattr(p, "hidden", False):
                    shown_quiet.append(sub_name)
    assert {"train", "eval", "quantize", "export", "bench", "info"} <= with_bars, with_bars
    assert not shown_quiet, shown_quiet


def test_a_command_called_with_nothing_to_work_on_shows_its_help(capsys):
    """``bench`` and ``report`` with no files print their help as help, not as one escaped error line."""
    from dotcom_mobile.cli import main

    for name in ("bench", "report"):
        assert main([name]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"Usage: dotcom-mobile {name} [OPTIONS]") and "\\n" not in err, err[:200]
        assert "\nOptions:\n" in err and "Examples:" in err
