"""The forced aligner in a child process, for a words stage that runs beside the face stage.

pocketsphinx keeps Python's interpreter lock for the whole of a ``process_raw`` call (measured: a
Python loop beside an alignment runs at 11 % of its rate), so an alignment on the words thread stalls
the face stage that shares the process for as long as it lasts (a face pass over four clips, 17.5 s
alone, took 21.2 s beside a thread aligning for 4.4 s of it; beside Whisper, which lets the lock go,
17.5 s). In a process of its own the aligner runs on the other core while the thread that waits for
it holds no lock.

The child runs :class:`~.align.ForcedAligner` itself, so its answers are the ones an aligner in this
process would give. Requests and answers cross the pipe as JSON plus the raw samples; nothing is
pickled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import weakref
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import ClipError, MedtalkError
from .types import Phone

_HEADER = struct.Struct("<II")  # lengths of the JSON part and of the raw part of a message
_SAMPLE_TYPES = ("int16", "float32", "float64")
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


class AlignerDied(ClipError):
    """The child ended mid-request (a crash in pocketsphinx, or killed): the clip fails, as it would
    have with the aligner in its worker, and a re-run retries it."""

    def __init__(self, code: int) -> None:
        super().__init__(
            "worker_crashed",
            f"the forced-alignment process ended while aligning this clip's words (exit code {code})",
            "re-run to retry it (the next clip starts a new aligner), or run it alone with --workers 1 -vv to see why",
        )


def _send(stream: BinaryIO, message: dict[str, Any], raw: bytes = b"") -> None:
    text = json.dumps(message).encode()
    stream.write(_HEADER.pack(len(text), len(raw)) + text + raw)
    stream.flush()


def _receive(stream: BinaryIO) -> tuple[dict[str, Any], bytes] | None:
    """The next message, or None at the end of the stream."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    n_text, n_raw = _HEADER.unpack(header)
    text, raw = stream.read(n_text), stream.read(n_raw)
    if len(text) < n_text or len(raw) < n_raw:
        return None
    return json.loads(text), raw


class AlignerProcess:
    """:class:`~.align.ForcedAligner`'s ``spell`` and ``align``, answered by a child process.

    The child starts on first use and ends when :meth:`close` is called, when this object is
    collected, or when this process ends (it stops at the end of its input)."""

    def __init__(self) -> None:
        self._child: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()  # one request at a time on the pipe
        self._finalizer: weakref.finalize | None = None

    def spell(self, word: str) -> list[str]:
        answer, _ = self._ask({"op": "spell", "word": word})
        return list(answer["pieces"])

    def align(self, pcm: np.ndarray, words: list[str]) -> tuple[list[tuple[float, float] | None], list[Phone]]:
        """As :meth:`ForcedAligner.align <.align.ForcedAligner.align>`."""
        samples = np.ascontiguousarray(pcm)
        if samples.dtype.name not in _SAMPLE_TYPES:
            samples = samples.astype(np.float32)
        answer, _ = self._ask({"op": "align", "words": list(words), "dtype": samples.dtype.name}, samples.tobytes())
        spans = [tuple(span) if span is not None else None for span in answer["spans"]]
        return spans, [Phone(*phone) for phone in answer["phones"]]

    def close(self) -> None:
        with self._lock:
            if self._finalizer is not None:
                self._finalizer()
            self._child = self._finalizer = None

    def _ask(self, message: dict[str, Any], raw: bytes = b"") -> tuple[dict[str, Any], bytes]:
        with self._lock:
            child = self._child or self._start()
            try:
                assert child.stdin is not None and child.stdout is not None
                _send(child.stdin, message, raw)
                answer = _receive(child.stdout)
            except OSError:  # a broken pipe: the child has gone
                answer = None
            if answer is None:  # the child has gone: its pipes are closed now, not when this object is collected
                assert self._finalizer is not None
                self._finalizer()
                self._child = self._finalizer = None
                raise AlignerDied(child.returncode)
            if "error" in answer[0]:
                raise MedtalkError(answer[0]["error"])
            return answer

    def _start(self) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p)
        child = subprocess.Popen(  # a session of its own: a terminal's Ctrl-C is for the parent, not for it
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        self._finalizer = weakref.finalize(self, _stop_child, child)
        assert child.stdout is not None
        ready = _receive(child.stdout)
        if ready is None or "error" in ready[0]:
            self._finalizer()
            self._finalizer = None
            why = ready[0]["error"] if ready else f"the forced-alignment process did not start ({sys.executable})"
            raise MedtalkError(why)
        self._child = child
        return child


def _stop_child(child: subprocess.Popen[bytes]) -> None:
    if child.stdin is not None:
        with contextlib.suppress(OSError):
            child.stdin.close()  # the child stops at the end of its input
    try:
        child.wait(timeout=5)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    if child.stdout is not None:
        child.stdout.close()


def serve() -> None:
    """The child's loop: answer requests on stdin until it ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it ends our input
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a library's prints must not reach the pipe
    requests = sys.stdin.buffer
    from .align import ForcedAligner

    try:
        aligner = ForcedAligner()
    except MedtalkError as err:
        _send(replies, {"error": str(err)})
        return
    _send(replies, {"ready": True})
    while (message := _receive(requests)) is not None:
        request, raw = message
        try:
            if request["op"] == "spell":
                _send(replies, {"pieces": aligner.spell(request["word"])})
                continue
            if request["dtype"] not in _SAMPLE_TYPES:
                raise ValueError(f"samples of type {request['dtype']!r}")
            spans, phones = aligner.align(np.frombuffer(raw, dtype=request["dtype"]), request["words"])
            reply = {
                "spans": [list(span) if span is not None else None for span in spans],
                "phones": [[p.phone, p.start_s, p.end_s, p.word_index] for p in phones],
            }
            _send(replies, reply)
        except Exception as err:  # answered, so the parent's clip fails with it instead of waiting
            _send(replies, {"error": f"forced alignment failed in its process: {type(err).__name__}: {err}"})


if __name__ == "__main__":
    serve()
