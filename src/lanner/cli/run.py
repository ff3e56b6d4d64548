"""``lanner run``: run a streaming pipeline from a YAML config or a deepstream-app INI file.

Parses arguments, loads and validates the config, runs ``lanner.pipeline.runner.Pipeline`` with a live
status line, then prints the summary table. Exit codes: 0 every source finished cleanly, 1 the run
finished but a source or sink failed (see the table), 2 config or usage error, 130 stopped by Ctrl-C
(after draining and closing the sinks).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from lanner.cli.app import err, info, out, state
from lanner.core.errors import ConfigError, UsageError

EXIT_ERRORS, EXIT_SIGNAL = 1, 130


@click.command("run", short_help="Run a streaming pipeline from a YAML or DeepStream config.")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False), help="Pipeline YAML file.")
@click.option("--deepstream", type=click.Path(dir_okay=False), help="A deepstream-app config (INI) to import instead.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key (repeatable).")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds (drains, then exits).")
@click.option("--check", is_flag=True, help="Validate the config (and print import warnings), then exit.")
@click.option("--truth", is_flag=True, help="Compare line counts with synthetic ground truth (<video>/counts.json).")
@click.pass_context
def run(
    ctx: click.Context, config_path: str | None, deepstream: str | None, overrides: tuple[str, ...],
    duration: float | None, check: bool, truth: bool,
) -> None:  # fmt: skip
    """Run a streaming pipeline: sources -> detector -> tracker -> analytics -> overlays -> sinks.

    \b
    Examples:
      lanner run -c my_pipeline.yaml      (lanner demo --print-config > my_pipeline.yaml gives one to start from)
      lanner run --deepstream configs/deepstream_app.txt --check   (what maps, what is ignored, missing files)
      lanner run --deepstream configs/deepstream_app.txt --set primary.interval=2 --duration 60
    """
    from lanner.pipeline.config import load_pipeline_config

    if bool(config_path) == bool(deepstream):
        raise UsageError("give exactly one of -c/--config and --deepstream", where="lanner run",
                         fix="e.g. lanner run -c my_pipeline.yaml")  # fmt: skip
    if duration is not None and duration <= 0:
        raise UsageError(f"--duration {duration} must be > 0", where="lanner run")
    if deepstream:
        from lanner.pipeline.deepstream import load_deepstream_config
        from lanner.pipeline.deepstream_ini import group_warnings

        config, warnings = load_deepstream_config(deepstream, overrides)
        for line in group_warnings(warnings):
            info(f"[yellow]warning:[/yellow] {escape(line)}")
    else:
        config = load_pipeline_config(config_path, overrides)
    if check:
        from lanner.pipeline.config import missing_inputs

        missing = missing_inputs(config)
        if missing:
            raise ConfigError("\n".join(missing), fix="fix these paths (relative ones are from where you run)")
        out.print(f"config ok: {len(config.sources)} sources, {len(config.sinks)} sinks")
        return
    exit_with(ctx, run_and_report(config, duration, truth))


def run_and_report(config: Any, duration: float | None = None, truth: bool = False) -> Any:
    """Run a validated pipeline config with a live status line, print its summary table (and the counts
    against synthetic ground truth with ``truth``) and the files it wrote; returns the summary."""
    from lanner.pipeline.runner import Pipeline

    _limit_malloc_arenas()
    pipeline = Pipeline(config)
    with _status() as show:
        summary = pipeline.run(duration_s=duration, on_status=lambda t: show(t.status_line()))
    out.print(summary_table(summary))
    if truth:
        out.print(truth_table(summary, config))
    files = output_files(config)
    if files:
        info(escape("outputs: " + ", ".join(files)))
    return summary


def output_files(config: Any) -> list[str]:
    """The files a run writes, for the last line a user reads: file sinks' paths, then the summary file.

    The summary table names sinks too, but cuts long names to fit the terminal; this line never does.
    """
    files = [str(sink.path) for sink in config.sinks if getattr(sink, "path", None)]
    if config.telemetry.summary_path:
        files.append(str(config.telemetry.summary_path))
    return files


def exit_with(ctx: click.Context, summary: Any) -> None:
    """The exit code of a finished run: 130 stopped by Ctrl-C, 1 a source or sink failed, else 0."""
    if summary.stopped_by == "signal":
        ctx.exit(EXIT_SIGNAL)
    if summary.errors:
        ctx.exit(EXIT_ERRORS)


def _limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's malloc arenas (``MALLOC_ARENA_MAX``) for this long-running, many-threaded process.

    With one arena per thread, frames allocated in decode threads and freed elsewhere fragment memory:
    ``bench/pipeline.py --soak`` saw resident memory creep up ~50 MB in 4 minutes with the default and
    stay flat with 2 arenas. No-op off glibc or when the user set ``MALLOC_ARENA_MAX`` themselves.
    """
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)  # -8 = M_ARENA_MAX (malloc.h)


@contextlib.contextmanager
def _status() -> Iterator[Any]:
    """A live status line on a terminal; plain lines otherwise (hidden by ``--quiet``)."""
    if state().quiet:
        yield lambda line: None
    elif err.is_terminal:
        with Live(Text("starting..."), console=err, transient=True, refresh_per_second=4) as live:
            yield lambda line: live.update(Text(line))
    else:
        yield lambda line: err.print(line, markup=False)


def summary_table(summary: Any) -> Table:
    """The end-of-run table: one row per source, then stages, sinks and line counts."""
    table = Table(title=f"lanner run: {summary.frames} frames in {summary.duration_s:.1f} s "
                        f"({summary.fps:.1f} fps), stopped by {summary.stopped_by}")  # fmt: skip
    for column in ("what", "frames", "inferred", "fps", "dropped", "status"):
        table.add_column(column, justify="left" if column in ("what", "status") else "right")
    for sid, src in summary.sources.items():
        status = src.get("error") or src.get("state", "")
        _add_row(table, f"source {sid} {src['name']}", str(src["frames"]), str(src["inferred"]),
                        f"{src['fps']:.1f}", str(src.get("dropped", 0)), str(status))  # fmt: skip
    for name, stage in summary.stages.items():
        _add_row(table, f"stage {name}", str(stage["frames"]), "", "", "",
                        f"mean {stage['mean_ms']:.1f} ms, p95 {stage['p95_ms']:.1f} ms")  # fmt: skip
    for name, sink in summary.sinks.items():
        _add_row(table, f"sink {name}", str(sink["written"]), "", "", str(sink["dropped"]),
                        sink.get("error") or f"{sink['failed']} failed")  # fmt: skip
    for line, counts in summary.analytics.get("lines", {}).items():
        _add_row(table, f"line {line}", "", "", "", "", f"in {counts['in']}, out {counts['out']}")
    return table


def truth_table(summary: Any, config: Any) -> Table:
    """Counted vs true line crossings for sources with ground truth (``lanner dataset synth --video``).

    The truth of ``demo_data/cam0.mp4`` is ``demo_data/cam0/counts.json``; a config line named
    ``cam0_road`` (or ``road``) on that source is compared with its ``road`` entry.
    """
    table = Table(title="line counts vs ground truth")
    for column in ("source", "line", "in", "true in", "out", "true out"):
        table.add_column(column, justify="left" if column in ("source", "line") else "right")
    counted = total = 0
    per_source = summary.analytics.get("per_source", {})
    for sid, source in enumerate(config.sources):
        path = Path(source.path)
        truth_file = path.with_suffix("") / "counts.json"
        if not truth_file.is_file():
            continue
        truth = json.loads(truth_file.read_text())
        for name, got in per_source.get(sid, per_source.get(str(sid), {})).get("lines", {}).items():
            want = truth.get(name.removeprefix(f"{path.stem}_"))
            if want is None:
                continue
            _add_row(table, path.stem, name, str(got["in"]), str(want["in"]), str(got["out"]), str(want["out"]))
            counted += got["in"] + got["out"]
            total += want["in"] + want["out"]
    error = abs(counted - total) / total * 100 if total else 0.0
    table.caption = f"all lines: {counted} counted, {total} true ({error:.1f}% off)"
    return table


def _add_row(table: Table, *cells: str) -> None:
    """A table row with the cells as plain text: names, paths and errors may hold "[x]" (rich markup)."""
    table.add_row(*(Text(cell) for cell in cells))
