"""One error hierarchy for all of lanner.

Every message says *what* went wrong, *where* (file:line, key path, node name) and *how to fix it*.
The CLI prints ``str(error)`` as one line; ``--debug`` adds the traceback.

Example:
    >>> raise ConfigError("unknown key 'lr'", where="spec.yaml:3 training.lr", fix="did you mean 'learning_rate'?")
    Traceback (most recent call last):
    ...
    lanner.core.errors.ConfigError: spec.yaml:3 training.lr: unknown key 'lr'; did you mean 'learning_rate'?
"""

from __future__ import annotations


class LannerError(Exception):
    """Base of every error lanner raises on purpose. ``exit_code`` is what the CLI exits with."""

    exit_code = 1

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None) -> None:
        self.what = what
        self.where = where
        self.fix = fix
        super().__init__(self._format())

    def _format(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        if self.fix:
            text = f"{text}; {self.fix}"
        return text


class ConfigError(LannerError):
    """A config, spec file or command-line override is wrong."""

    exit_code = 2


class UsageError(LannerError):
    """A command was called wrongly (bad argument combination, missing input)."""

    exit_code = 2


class DataError(LannerError):
    """A dataset, image, label file or video is missing, corrupt or inconsistent."""


class UnsupportedOpError(LannerError):
    """An ONNX op (or op version) the engine cannot run."""


class PlanMismatchError(LannerError):
    """A serialized engine plan was built for another version, device or library set."""


class Interrupted(LannerError):
    """The user stopped a long command (Ctrl-C); the message says what was kept and how to go on."""

    exit_code = 130


class SourceError(LannerError):
    """A video source cannot be opened or read."""
