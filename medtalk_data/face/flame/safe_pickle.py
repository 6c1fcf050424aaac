"""Read the pickles FLAME is distributed in without running any code they could carry.

FLAME's ``generic_model.pkl`` (2020) and ``flame2023.pkl`` were written by Python 2 with chumpy
and scipy installed: numpy arrays, ``chumpy.ch.Ch`` objects wrapping arrays, a
``scipy.sparse.csc_matrix`` joint regressor, strings. ``pickle.load`` would import and call
whatever the file names, so a file from a stranger could run code. :func:`load_restricted`
admits only numpy's array and dtype rebuilders; chumpy and scipy.sparse objects are never built:
their pickled state is captured and turned into plain numpy arrays afterwards, and every other
global is refused before anything is called. Neither chumpy nor scipy needs to be installed.
"""

from __future__ import annotations

import _compat_pickle
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import MedtalkError
from ...io.files import display_path

try:  # numpy 2 moved the array rebuilders to numpy._core; pickles name either path
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray  # type: ignore[no-redef]
    from numpy.core import numeric as _numeric  # type: ignore[no-redef]

_NUMPY: dict[tuple[str, str], Any] = {}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _NUMPY[(_module, "_reconstruct")] = _multiarray._reconstruct
    _NUMPY[(_module, "scalar")] = _multiarray.scalar
for _module in ("numpy.core.numeric", "numpy._core.numeric"):
    _NUMPY[(_module, "_frombuffer")] = _numeric._frombuffer
_NUMPY[("numpy", "ndarray")] = np.ndarray
_NUMPY[("numpy", "dtype")] = np.dtype
_BUILTINS = {("builtins", "object"): object, ("builtins", "set"): set, ("builtins", "frozenset"): frozenset}

# Foreign classes whose objects are kept as their pickled state (see _Captured): chumpy arrays and
# scipy.sparse matrices, under the module paths old and new releases pickle them with.
_SPARSE_FORMATS = ("csc", "csr", "coo")
_CAPTURED = {("chumpy.ch", "Ch"): "chumpy"} | {
    (f"scipy.sparse.{prefix}{fmt}", f"{fmt}_matrix"): fmt for fmt in _SPARSE_FORMATS for prefix in ("", "_")
}


class _Captured:
    """An admitted foreign object, never constructed: only its pickled state is kept."""

    kind = ""

    def __init__(self, *args: Any) -> None:  # called by REDUCE-style pickles; arguments are ignored
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


_CAPTURED_CLASSES = {key: type(f"Captured_{kind}", (_Captured,), {"kind": kind}) for key, kind in _CAPTURED.items()}


def _reconstructor(cls: type, base: type, state: Any) -> Any:
    """copyreg._reconstructor for protocol-0/1 pickles, limited to the captured classes."""
    if not (isinstance(cls, type) and issubclass(cls, _Captured)) or base is not object:
        raise pickle.UnpicklingError(f"refused to rebuild {getattr(cls, '__name__', cls)!r}")
    obj = cls.__new__(cls)
    obj.state = None
    return obj


def _encode(text: str, encoding: str = "utf-8") -> bytes:
    """_codecs.encode as Python 3 protocol-2 pickles use it to carry bytes; text codecs only."""
    if encoding.lower().replace("_", "-") not in ("latin1", "latin-1", "iso-8859-1", "utf-8", "utf8"):
        raise pickle.UnpicklingError(f"refused codec {encoding!r}")
    return text.encode(encoding)


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names (__builtin__, copy_reg), mapped as pickle's own find_class does for old protocols
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        key = (module, name)
        if key in _NUMPY:
            return _NUMPY[key]
        if key in _BUILTINS:
            return _BUILTINS[key]
        if key in _CAPTURED_CLASSES:
            return _CAPTURED_CLASSES[key]
        if key == ("copyreg", "_reconstructor"):
            return _reconstructor
        if key == ("_codecs", "encode"):
            return _encode
        raise pickle.UnpicklingError(f"refused global {module}.{name}")


def _plain(obj: Any) -> Any:
    """Captured chumpy/sparse objects → numpy arrays, recursively; anything unexpected → ValueError."""
    if isinstance(obj, _Captured):
        return _captured_array(obj)
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            return np.array([_plain(x) for x in obj.reshape(-1)], dtype=object).reshape(obj.shape)
        return obj
    if isinstance(obj, dict):
        return {_plain(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return type(obj)(_plain(x) for x in obj)
    if obj is None or isinstance(obj, (str, bytes, bool, int, float, complex, np.generic)):
        return obj
    raise ValueError(f"unexpected object of type {type(obj).__name__}")


def _captured_array(obj: _Captured) -> np.ndarray:
    state = obj.state
    if not isinstance(state, dict):
        raise ValueError(f"a {obj.kind} object without its state")
    if obj.kind == "chumpy":
        if "x" not in state:
            raise ValueError("a chumpy expression (not a plain chumpy array); only arrays can be read without chumpy")
        return np.asarray(_plain(state["x"]))
    shape = tuple(int(n) for n in state.get("_shape", ()))
    if len(shape) != 2:
        raise ValueError(f"a {obj.kind} sparse matrix without a 2-D shape")
    dense = np.zeros(shape, dtype=np.asarray(state["data"]).dtype)
    data = np.asarray(state["data"])
    if obj.kind == "coo":
        np.add.at(dense, (np.asarray(state["row"]), np.asarray(state["col"])), data)
        return dense
    indices, indptr = np.asarray(state["indices"]), np.asarray(state["indptr"])
    major = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    if obj.kind == "csc":
        np.add.at(dense, (indices, major), data)
    else:
        np.add.at(dense, (major, indices), data)
    return dense


def load_restricted(path: Path, what: str) -> Any:
    """The pickled object in ``path`` with only numpy arrays, plain containers and captured
    chumpy/scipy.sparse arrays admitted (see the module docstring); MedtalkError naming the file otherwise."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise MedtalkError(f"{display_path(path)}: cannot read the {what} ({err.strerror or err})") from err
    try:
        raw = _RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
        return _plain(raw)
    except (pickle.UnpicklingError, ValueError, EOFError, TypeError, AttributeError, IndexError, KeyError) as err:
        raise MedtalkError(
            f"{display_path(path)}: not a readable {what} ({err}); only numpy arrays, scipy sparse matrices and "
            "chumpy arrays are read from a pickle, nothing in it is run"
        ) from err
