"""Ctrl-C from inside a test: a SIGINT to this process once the code under test is ready for it."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Callable


def interrupt_when(ready: Callable[[], bool], timeout: float, poll: float = 0.2,
                   signum: int = signal.SIGINT) -> threading.Thread:
    """Start a daemon thread that sends this process SIGINT, as a Ctrl-C in the terminal would,
    once ``ready()`` is true (checked every ``poll`` seconds). After ``timeout`` seconds it sends
    it anyway, so a test whose condition never comes fails on its assertions instead of hanging.
    ``signum``: another signal to send (``SIGTERM``, as a scheduler's kill).

    The signal is handled by the main thread, which is where ``KeyboardInterrupt`` is raised.
    A process that ignores the signal would never get it, and the test would wait out whatever
    it interrupts (a 600 s task), so that is an error at once: a shell without job control
    starts a background command (``make test &`` in a script) with SIGINT ignored.
    """
    if signal.getsignal(signum) == signal.SIG_IGN:
        raise RuntimeError(f"this process ignores {signal.Signals(signum).name} (started in the background by a shell "
                           "without job control?), so interrupt_when cannot interrupt it; run the tests in the "
                           "foreground or under `set -m`")

    def wait_then_interrupt() -> None:
        deadline = time.monotonic() + timeout
        while not ready() and time.monotonic() < deadline:
            time.sleep(poll)
        os.kill(os.getpid(), signum)

    thread = threading.Thread(target=wait_then_interrupt, name="interrupt_when", daemon=True)
    thread.start()
    return thread
