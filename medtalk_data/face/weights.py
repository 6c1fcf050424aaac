"""Network weights the user brings (DECA, FAN): read without running code, loaded only if they fit.

``torch.load(weights_only=True)`` admits tensors and plain containers, nothing that executes; a
state dict must then match the network exactly (same tensor names and shapes), so a file of
another architecture is refused with one line instead of a half-loaded network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import MedtalkError
from ..io.files import display_path


def read_weights(path: Path, what: str) -> Any:
    """The object saved in ``path``, read with ``weights_only=True``; ``what`` names the file in the error."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # weights_only refuses anything but tensors and containers
        problem = f"{type(err).__name__}: {err}".split("\n")[0]
        raise MedtalkError(f"{display_path(path)}: not readable {what} ({problem})") from err


def load_fitted(net: Any, state: dict[str, Any], path: Path, what: str) -> Any:
    """``net`` with ``state`` loaded, in eval mode; refused unless every tensor name and shape matches."""
    expected = net.state_dict()
    wrong = [k for k in expected if k not in state or tuple(state[k].shape) != tuple(expected[k].shape)]
    extra = [k for k in state if k not in expected]
    if wrong or extra:
        example = (wrong or extra)[0]
        raise MedtalkError(f"{display_path(path)}: not {what}: {len(wrong)} tensors missing or of another "
                           f"shape, {len(extra)} unknown, e.g. {example!r}")  # fmt: skip
    net.load_state_dict(state)
    return net.eval()
