"""Ctrl-C during extraction asks for a stop at the next safe point; a second one interrupts at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medtalk_data.stopping import StopRequested, check_stop, stop_on_ctrl_c, stop_requested


def _ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:  # Python runs the handler at the main thread's next bytecode
        time.sleep(0.001)


def first_ctrl_c_requests_a_stop_and_the_second_interrupts() -> None:
    with stop_on_ctrl_c():
        check_stop()  # nothing asked yet
        os.kill(os.getpid(), signal.SIGINT)
        deadline = time.monotonic() + 2.0
        while not stop_requested() and time.monotonic() < deadline:
            time.sleep(0.001)
        assert stop_requested()  # and no KeyboardInterrupt was raised wherever the main thread was
        with pytest.raises(StopRequested):
            check_stop()
        with pytest.raises(KeyboardInterrupt) as second:
            _ctrl_c()
        assert not isinstance(second.value, StopRequested)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert not stop_requested()
    with pytest.raises(KeyboardInterrupt):  # outside the block Ctrl-C interrupts as usual
        _ctrl_c()


def a_process_that_ignores_ctrl_c_keeps_ignoring_it() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as under nohup or in a background job
    try:
        with stop_on_ctrl_c():
            _ctrl_c()
            assert not stop_requested()
            check_stop()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


# Each case runs in a fresh interpreter: the signal disposition of the pytest process is whatever the
# hundreds of tests before it (and the native libraries they loaded) left, which is not what is tested here.
REPO = Path(__file__).resolve().parents[1]


def _fresh(case: str) -> None:
    code = (
        "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
        f"import tests.test_stopping as t; t.{case}()"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_first_ctrl_c_requests_a_stop_and_the_second_interrupts() -> None:
    _fresh("first_ctrl_c_requests_a_stop_and_the_second_interrupts")


def test_a_process_that_ignores_ctrl_c_keeps_ignoring_it() -> None:
    _fresh("a_process_that_ignores_ctrl_c_keeps_ignoring_it")
