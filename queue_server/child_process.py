"""Worker processes of the server (the estimator's, Open JTalk's) that end when the server does."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
from typing import Final

PR_SET_PDEATHSIG: Final = 1          # linux/prctl.h: a signal for this process when its parent dies


def exit_with_server() -> None:
    """Make this worker process end as soon as the server that asked for it does, even after a kill -9.

    A pool worker never notices on its own: it blocks reading its task queue, whose write end it
    holds itself, and under the forkserver it also holds the forkserver's "server alive" pipe, so
    the forkserver (and the resource tracker behind it) would wait on the worker for ever too.
    ``parent_process().sentinel`` is a pipe from the server itself (a process handle on Windows):
    it becomes ready when the server is gone, however it died. A daemon thread waits on it.
    """
    parent = multiprocessing.parent_process()
    if parent is not None:
        def watch() -> None:
            parent.join()  # returns when the sentinel is ready: the server has exited
            os._exit(0)  # nothing to flush: a result now would have no one to read it

        threading.Thread(target=watch, name="server-watchdog", daemon=True).start()
    if sys.platform.startswith("linux"):
        # Belt and braces where the kernel offers it: a SIGKILL when the direct parent goes (the
        # server itself under "spawn"/"fork"), which works even while the worker holds the GIL.
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() == 1:
            os._exit(0)  # the parent died before the signal was armed
