"""Whisper's log-mel features on one BLAS thread, so every engine computes the same numbers.

faster-whisper's feature extractor multiplies a mel filterbank into the spectrogram with numpy, and
OpenBLAS splits that product over its threads in a way that changes the rounding: the features of
one clip differed in 1 % of their values between a process with two BLAS threads and one started
with ``OMP_NUM_THREADS=1``, as Ray starts its workers (measured with OpenBLAS 0.3.31; the words and
the cached audio features then differed between the local and the Ray engine). The product is small,
so one thread costs nothing measurable; CTranslate2's own threads are not touched.
"""

from __future__ import annotations

from typing import Any

_controller: Any = None


class OneBlasThread:
    """Wraps a callable (faster-whisper's ``FeatureExtractor``) so that it runs with numpy's BLAS on one
    thread; every other attribute is the wrapped object's."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        global _controller
        if _controller is None:
            from threadpoolctl import ThreadpoolController

            _controller = ThreadpoolController()
        with _controller.limit(limits=1, user_api="blas"):
            return self._inner(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
