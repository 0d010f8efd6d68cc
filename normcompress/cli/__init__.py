"""`normcompress`: train, evaluate, study, reconstruct, compress and decompress, and manage the run store.

One module per command group (train.py: train, eval; study.py: study, rd; codec.py: reconstruct,
compress, decompress; runs.py: runs ..., with annotations.py for runs tag, name and note), each command
a thin reader of options that calls the facade (normcompress.api) and prints. Every failure is one line
on stderr and an exit code; every string that comes from a user or a file is printed as plain text with
its control characters made visible.
"""

import signal
import sys
from typing import Annotated

import typer

from ..api import installed_version
from ..console import err
from ..errors import NormcompressError
from ..text import one_line
from . import codec, runs, study, train

# Click's plain help, not Rich's boxes: those leave the descriptions a 20-character column at 80 columns
# and 41 at 120, where click's give them 46 and wrap at a readable width.
app = typer.Typer(
    pretty_exceptions_enable=False, rich_markup_mode=None, context_settings={"help_option_names": ["-h", "--help"]}
)
for group in (train.app, study.app, codec.app):
    app.add_typer(group)
app.add_typer(runs.app, name="runs")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"normcompress {installed_version()}")
        raise typer.Exit(0)


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    show_version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Train convolutional autoencoders on 32x32 images under different loss norms, and compare the runs."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


def main() -> None:
    """Console entry point: every failure becomes one line on stderr and an exit code (2 usage, 1 runtime,
    130 interrupted)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    try:
        code = app(args=_bare_ray_is_local(sys.argv[1:]), prog_name="normcompress", standalone_mode=False)
    except typer.TyperException as exc:  # Typer's usage errors: a bad option, a missing argument
        ctx = getattr(exc, "ctx", None)
        command = ctx.command_path if ctx else "normcompress"
        _error(f"{exc.format_message()} (see: {command} --help)")
        code = exc.exit_code
    except typer.Abort as exc:  # Click's answer to Ctrl-C or end of input outside `train` and `study`
        interrupted = isinstance(exc.__cause__, KeyboardInterrupt)
        err.print("normcompress: interrupted" if interrupted else "normcompress: aborted")
        code = 130 if interrupted else 1
    except KeyboardInterrupt:
        err.print("normcompress: interrupted")
        code = 130
    except NormcompressError as exc:
        _error(str(exc))
        code = exc.exit_code
    sys.exit(code or 0)


def _bare_ray_is_local(args: list[str]) -> list[str]:
    """`study --ray` with no address means a local Ray instance (Click has no option with an optional
    value): a bare --ray, last or before another option, gets the address "local"."""
    args = list(args)
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--ray" and (i + 1 == len(args) or args[i + 1].startswith("-")):
            args.insert(i + 1, "local")
            break
    return args


def _error(message: str) -> None:
    """One line, whatever the message holds (a file name with a newline or an escape sequence)."""
    err.print(f"normcompress: error: {one_line(message)}")
