import click
import pytest

from lanner import __version__
from lanner.cli.main import cli, main
from lanner.core import ConfigError, DataError


@pytest.fixture
def failing_command():
    """A throwaway sub-command that raises what the test asks for."""
    holder: dict[str, BaseException] = {}

    @click.command("boom")
    def boom() -> None:
        raise holder["error"]

    cli.add_command(boom)
    yield holder
    cli.commands.pop("boom")


def test_help_everywhere(capsys):
    assert main(["--help"]) == 0
    assert "dataset" in capsys.readouterr().out
    assert main(["dataset", "--help"]) == 0


def test_version(capsys):
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_unknown_command_is_usage_error(capsys):
    assert main(["frobnicate"]) == 2
    assert "No such command" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("error", "code", "line"),
    [
        (DataError("image missing", where="labels/3.txt:1"), 1, "error: labels/3.txt:1: image missing"),
        (ConfigError("unknown key", where="spec.yaml:2: x", fix="did you mean 'y'?"), 2, "did you mean 'y'?"),
        (RuntimeError("kaput"), 1, "error: RuntimeError: kaput (run with --debug for the traceback)"),
    ],
)
def test_errors_are_one_line_with_exit_code(failing_command, capsys, error, code, line):
    failing_command["error"] = error
    assert main(["boom"]) == code
    err = capsys.readouterr().err
    assert line in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_debug_shows_traceback(failing_command, capsys):
    failing_command["error"] = DataError("bad")
    assert main(["--debug", "boom"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_exit_code_from_ctx_exit_is_returned():
    @click.command("quit3")
    @click.pass_context
    def quit3(ctx: click.Context) -> None:
        ctx.exit(3)

    cli.add_command(quit3)
    try:
        assert main(["quit3"]) == 3
    finally:
        cli.commands.pop("quit3")
