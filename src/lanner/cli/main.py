"""The ``lanner`` entry point.

Exit codes: 0 ok, 2 usage or config error, 1 any other failure. A failure prints one line
(``error: ...``); ``--debug`` prints the traceback too.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence

import click
from rich.markup import escape

from lanner import __version__
from lanner.cli.app import CliState, err
from lanner.cli.calibrate import calibrate
from lanner.cli.dataset import dataset
from lanner.cli.demo import demo
from lanner.cli.engine import bench, build, compare
from lanner.cli.env import env
from lanner.cli.model import evaluate_cmd, export_cmd, infer_cmd
from lanner.cli.run import run
from lanner.cli.synth import synth
from lanner.cli.train import train
from lanner.core.errors import Interrupted, LannerError


class _WorkflowGroup(click.Group):
    """Lists the commands in the order they were added (the order of the work), not alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


EPILOG = """\b
New to lanner? Start with:
  lanner demo                   4 synthetic cameras -> detector -> counts
  lanner dataset synth --help   make a labelled dataset to train on
  lanner COMMAND --help         what a command does, with an example

Exit codes: 0 ok, 1 failure, 2 usage or config error (--debug: traceback)."""


@click.group(
    cls=_WorkflowGroup,
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
)
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.option("--quiet", "-q", is_flag=True, help="Only print results and errors: no progress bars or status lines.")
@click.version_option(__version__, prog_name="lanner")
@click.pass_context
def cli(ctx: click.Context, debug: bool, quiet: bool) -> None:
    """lanner: train, compile, stream and serve vision models on CPU or GPU."""
    ctx.obj = CliState(debug=debug, quiet=quiet)


dataset.add_command(synth)
for command in (demo, dataset, train, evaluate_cmd, infer_cmd, export_cmd, calibrate, build, bench, compare, run, env):
    cli.add_command(command)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (also used by tests)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        # standalone_mode=False: click returns ctx.exit(n)'s code instead of exiting
        rc = cli.main(args=args, prog_name="lanner", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show(file=sys.stderr)
        return 2 if isinstance(exc, click.UsageError) else exc.exit_code
    except click.Abort:
        err.print("aborted")
        return 130
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except Interrupted as exc:  # a long command stopped by Ctrl-C: what it kept, and how to go on
        err.print(escape(str(exc)), markup=True, highlight=False)
        return exc.exit_code
    except LannerError as exc:
        if debug:
            traceback.print_exc()
        err.print(f"[red]error:[/red] {escape(str(exc))}", markup=True, highlight=False)  # a path may hold "[x]"
        return exc.exit_code
    except Exception as exc:  # the last line of defence: one line, traceback only on --debug
        if debug:
            traceback.print_exc()
        err.print(f"error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", markup=False)
        return 1
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
