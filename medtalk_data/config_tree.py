"""The one way settings files are read: `extract` and `train` configs alike.

A config is a YAML mapping laid over a complete tree of defaults (the packaged file that shows
every default: ``configs/extract.yaml``, ``medtalk_models/configs/small.yaml``). Every key must
exist in the defaults (a typo names the nearest valid key), every value must have its default's
type (an int where a float is expected is widened), and every problem in a file is reported at
once, in one line that names the file. What the tree then means — a dataclass tree for `extract`,
checked choices and ranges for `train` — each side's own code says.
"""

from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .io.files import display_path


def read_yaml_mapping(path: Path, print_hint: str) -> dict[str, Any]:
    """The mapping in a YAML file ({} for an empty file); ConfigError naming the file otherwise."""
    where = display_path(path)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"{where}: cannot read config ({err.strerror or err})") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{where}: not valid YAML ({str(err).splitlines()[0]})") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a config is a YAML mapping; see `{print_hint}`")
    return data


def merge_checked(base: dict[str, Any], override: dict[str, Any], where: str) -> dict[str, Any]:
    """``override`` laid over ``base`` (neither changed); ConfigError listing every unknown key and wrong type."""
    problems: list[str] = []
    merged = _merge(base, override, "", problems)
    if problems:
        raise ConfigError(f"{where}: " + "; ".join(problems))
    return merged


def _merge(base: dict[str, Any], override: dict[str, Any], prefix: str, problems: list[str]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        dotted = f"{prefix}{key}"
        if key not in base:
            close = difflib.get_close_matches(str(key), [str(k) for k in base], n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else f"; valid: {', '.join(map(str, base))}"
            problems.append(f"unknown config field {dotted}{hint}")
            continue
        default = base[key]
        if isinstance(default, dict):
            if not isinstance(value, dict):
                problems.append(f"{dotted} must be a mapping, got {value!r}")
                continue
            out[key] = _merge(default, value, f"{dotted}.", problems)
            continue
        checked, problem = _typed(dotted, default, value)
        if problem:
            problems.append(problem)
        else:
            out[key] = checked
    return out


def _typed(dotted: str, default: Any, value: Any) -> tuple[Any, str | None]:
    """(``value`` as the default's type, None) or (None, the problem)."""
    if value is None or default is None:
        return value, None
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, int):
        ok = not isinstance(value, bool) and (
            isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        )
        value = int(value) if ok else value
    elif isinstance(default, str):
        # "last" or a layer index both fit a layer field
        ok = isinstance(value, str) or (dotted.endswith(".layer") and isinstance(value, int))
    elif isinstance(default, list):
        ok = isinstance(value, list)
    else:
        ok = True
    if not ok:
        return None, f"{dotted} = {value!r} should be a {type(default).__name__} like {default!r}"
    return value, None
