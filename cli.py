"""``dotcom-mobile``: train, quantize, export, benchmark and deploy DoTCoM models.

The group is lazy: each sub-command lives in its room (``<room>/commands.py``) and is
imported only when it runs, so ``--help`` answers at once without importing torch.
``info`` and ``predict`` live beside this file in ``model_commands.py``: importing
anything under ``dotcom_mobile.model`` runs its ``__init__``, which registers the
networks with timm and so loads torch.
User mistakes (:class:`DotcomError`, click usage errors) end in one line and a
non-zero exit; anything else is a bug and keeps its traceback. ``-v/--verbose``
shows the libraries' import-time warnings that are hidden otherwise (export/noise.py).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

# name -> (module, attribute, one-line help). Order is the order of --help.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "info": ("dotcom_mobile.model_commands", "info", "Variants with params, MACs and the paper's figures."),
    "predict": ("dotcom_mobile.model_commands", "predict", "Classify images with a model or checkpoint."),
    "train": ("dotcom_mobile.cli", "train_with_qat", "Train on an ImageFolder: paper or finetune recipe (--qat: then int8 QAT)."),
    "eval": ("dotcom_mobile.cli", "eval_with_checks", "Top-1/top-5 of a checkpoint or an exported .pte."),
    "quantize": ("dotcom_mobile.quantize.commands", "quantize", "int8 PTQ/QAT with torchao PT2E and a quality report."),
    "inspect": ("dotcom_mobile.quantize.commands", "inspect", "Activation histograms before/after Co-Bias."),
    "export": ("dotcom_mobile.export.commands", "export", "Lower to ExecuTorch .pte or Core ML .mlpackage."),
    "bench": ("dotcom_mobile.bench.commands", "bench", "Benchmark artifacts and write latency reports."),
    "report": ("dotcom_mobile.report.commands", "report", "Aggregate latency reports into tables and plots."),
    "android": ("dotcom_mobile.devices.android", "android", "Drive the Android demo app over adb."),
    "ios": ("dotcom_mobile.devices.ios", "ios", "Benchmark on an iPhone through Xcode."),
    "demo": ("dotcom_mobile.demo", "demo", "The main job: quantize, export, bench and report DoTCoM-Tiny."),
}


class LazyGroup(click.Group):
    """A click group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        cmd = getattr(importlib.import_module(module), attr)
        return cmd if isinstance(cmd, click.Command) else cmd()  # a factory builds it on demand

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the table: listing commands must not import torch.
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_) for name, (_, _, help_) in COMMANDS.items()])

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        name = args[0] if args else None
        if name is not None and name not in COMMANDS and not name.startswith("-"):
            import difflib

            close = difflib.get_close_matches(name, list(COMMANDS), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            ctx.fail(f"No such command '{name}'.{hint}")
        return super().resolve_command(ctx, args)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="dotcom-mobile", prog_name="dotcom-mobile")
@click.option("-v", "--verbose", is_flag=True,
              help="Also show the libraries' own warnings (torch, torchao, coremltools), hidden by default.")
def cli(verbose: bool) -> None:
    """dotcom-mobile: DoTCoM from PyTorch to the phone.

    \b
    Pipeline:  model -> quantize -> export -> bench/report (host, Android, iOS)
    \b
    Examples:
      dotcom-mobile info
      dotcom-mobile predict cat.jpg --model dotcom_tiny --checkpoint weights.pth
      dotcom-mobile quantize --model dotcom_tiny --backend xnnpack --calib images/
      dotcom-mobile export --model dotcom_tiny --quantized out/dotcom_tiny_xnnpack_q8.pt2 --target xnnpack
      dotcom-mobile bench out/*.pte --threads 1,2 --baseline eager
      dotcom-mobile report reports/ --out report.md
    """
    # Before any command imports torch: the known import-time noise (export/noise.py, which
    # imports nothing itself) stays hidden unless -v, here and in the children commands start.
    from dotcom_mobile.export.noise import quiet_known_noise

    quiet_known_noise(True if verbose else None)


def train_with_qat() -> click.Command:
    """``train`` plus ``--qat EPOCHS``: hand best.pth to the quantize room's QAT flow.

    Wired here because train may not import quantize (imports flow cli -> quantize ->
    train); the training command itself stays unaware of quantization.
    """
    import copy
    from pathlib import Path

    from dotcom_mobile.train.commands import train as base

    cmd = copy.copy(base)
    cmd.params = [*base.params, click.Option(
        ["--qat", "qat_epochs"], type=int, default=0, show_default=True, metavar="EPOCHS",
        help="After training, quantization-aware fine-tuning of best.pth for EPOCHS epochs on the same data "
             "(as `dotcom-mobile quantize --qat-epochs`); the int8 .pt2 and its report go into the run folder.")]

    @click.pass_context
    def callback(ctx: click.Context, qat_epochs: int, **kwargs: Any) -> Any:
        result = ctx.invoke(base.callback, **kwargs)
        if qat_epochs and result.is_main:  # after a torchrun job, rank 0 only
            from dotcom_mobile.quantize.api import quantize_model

            data = Path(result.config.data)
            q = quantize_model(result.config.model, checkpoint=result.best, qat_epochs=qat_epochs,
                               calib=data / "train", train_dir=data / "train", val_dir=data / "val",
                               input_size=result.config.input_size, out_dir=result.out_dir,
                               progress=result.config.progress)
            click.echo(f"QAT int8 model: {q.pt2_path}")
        return result

    cmd.callback = callback
    return cmd


def eval_with_checks() -> click.Command:
    """``eval`` with the export room's checks of every ``--artifact`` before the runtime loads it.

    Wired here because train may not import export (see train_with_qat): each .pte is
    checked (export/pte.py), its manifest validated against the schema, and its method
    loaded once in a child process, so a damaged file is one line instead of an abort of
    this process. eval's own messages (no manifest, another suffix) are left to it.
    """
    import copy
    from pathlib import Path

    from dotcom_mobile.train.commands import evaluate as base

    cmd = copy.copy(base)

    def callback(**kwargs: Any) -> Any:
        from dotcom_mobile.export.manifest import validate_manifest
        from dotcom_mobile.export.pte import SUFFIXES, check_program, probe_load

        for art in map(Path, kwargs["artifacts"]):
            if art.suffix in SUFFIXES:
                check_program(art, runs_here=True)
                if art.with_suffix(".json").is_file():
                    validate_manifest(art.with_suffix(".json"))
                    probe_load(art)
        return base.callback(**kwargs)

    cmd.callback = callback
    return cmd


def _is_user_error(e: BaseException) -> bool:
    """Whether ``e`` is a :class:`DotcomError`, without importing the model room (and torch).

    A command that raised one has imported ``dotcom_mobile.model.errors``; while that
    module is not loaded, nothing can have raised its exception.
    """
    errors = sys.modules.get("dotcom_mobile.model.errors")
    return errors is not None and isinstance(e, errors.DotcomError)


# Characters str.splitlines() breaks a line at (newlines, and also \v, \f, \x1c-\x1e, \x85,
# U+2028/9): a message that quotes a user's key or path containing one would print as two.
_LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")


def one_line(message: str) -> str:
    """``message`` with every line-breaking character written as its escape (``\\x1e``)."""
    return "".join(ascii(c)[1:-1] if c in _LINE_BREAKS else c for c in message)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: one-line errors for user mistakes."""
    try:
        rv = cli.main(args=argv, prog_name="dotcom-mobile", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.exceptions.NoArgsIsHelpError as e:  # `bench`, `report` with nothing to work on: their help
        e.show()
        return e.exit_code
    except click.UsageError as e:  # one line too, with where to look instead of the usage block
        hint = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
        click.echo(f"Error: {one_line(e.format_message())}{hint}", err=True)
        return e.exit_code
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.exceptions.Exit as e:
        return e.exit_code
    except Exception as e:
        if not _is_user_error(e):
            raise
        click.secho(f"Error: {one_line(str(e))}", fg="red", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    return rv if isinstance(rv, int) else 0  # ctx.exit(n) inside a command returns n here


if __name__ == "__main__":
    sys.exit(main())
