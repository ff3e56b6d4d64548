"""Signals handled once: the first Ctrl-C or SIGTERM lets a long run end cleanly, a second acts as before.

``lanner run`` drains its pipeline on the first one; ``lanner train`` turns SIGTERM into the same
``KeyboardInterrupt`` path as Ctrl-C. Both install their handler with ``handle_once`` and put the previous
handlers back with the function it returns.

Example:
    >>> import signal
    >>> restore = handle_once((signal.SIGTERM,), lambda signum: None)
    >>> restore()
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Sequence


def handle_once(signals: Sequence[signal.Signals], callback: Callable[[int], None]) -> Callable[[], None]:
    """Call ``callback(signum)`` on the first of each of ``signals``; that signal's previous handler then comes
    back (so a second one aborts as usual). Returns the function that restores every previous handler.

    Only the main thread may set handlers: elsewhere nothing is installed and the returned function does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.getsignal(sig) for sig in signals}

    def handler(signum: int, frame: object) -> None:
        signal.signal(signum, previous[signal.Signals(signum)])
        callback(signum)

    for sig in previous:
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore
