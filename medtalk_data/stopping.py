"""Ctrl-C during extraction: stop at the next safe point of our own code, not inside a library.

Python turns SIGINT into a KeyboardInterrupt raised at whatever bytecode the main thread is running.
During extraction that is mostly inside MediaPipe's task API (which hands every call to a worker
thread through ``concurrent.futures`` and waits on it), faster-whisper or PyAV, whose locks and
threads are not written to be torn down half-way; once in a CI run such an interrupted extract
never exited. So while :func:`stop_on_ctrl_c` is active the first Ctrl-C only asks to stop: the
frame, chunk or stage in progress ends, :func:`check_stop` (called between frames, chunks, stages
and clips) raises :class:`StopRequested`, the unfinished clip's staging folder is removed and the
finished clips stay. A second Ctrl-C interrupts at once, as Python would.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class StopRequested(KeyboardInterrupt):
    """Raised at a safe point after Ctrl-C; a KeyboardInterrupt, so every caller treats it as one."""


_requested = threading.Event()

NOTICE = b"\nCtrl-C: stopping after the current step; finished clips are kept (press Ctrl-C again to stop at once)\n"


def stop_requested() -> bool:
    return _requested.is_set()


def check_stop() -> None:
    """Raise StopRequested when Ctrl-C was pressed since :func:`stop_on_ctrl_c` began."""
    if _requested.is_set():
        raise StopRequested("stopped by Ctrl-C")


def _on_sigint(signum: int, frame: object) -> None:
    if _requested.is_set():
        raise KeyboardInterrupt
    _requested.set()
    os.write(2, NOTICE)  # not logging or sys.stderr: the main thread may be inside either right now


def _on_sigint_in_worker(signum: int, frame: object) -> None:
    _requested.set()  # never escalates: the parent decides when a worker is ended at once


@contextmanager
def stop_on_ctrl_c() -> Iterator[None]:
    """Within this block the first SIGINT requests a stop instead of interrupting.

    Only where Ctrl-C would raise KeyboardInterrupt anyway (Python's default handler, main thread):
    a process that ignores SIGINT (started with ``nohup``, a background job) or that has its own
    handler keeps it."""
    usable = threading.current_thread() is threading.main_thread()
    if not usable or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    _requested.clear()
    signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _requested.clear()


def worker_stops_on_ctrl_c() -> None:
    """For a worker process of a batch: every SIGINT (the terminal's reaches the whole process group;
    the parent forwards its own) only requests a stop, so the worker ends its clip at the next safe
    point and exits cleanly; the parent terminates it if the user presses Ctrl-C again."""
    signal.signal(signal.SIGINT, _on_sigint_in_worker)
