"""The rig spec: what one per-frame control vector means (channel names, fps, channel groups).

Every model dimension, metric region and the intensity target are derived from it by channel
*name*, so the same code trains on MediaPipe's 52 blendshapes at 25 fps and on MEDTalk's 174
MetaHuman controllers at 60 fps. It travels inside every checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from medtalk_data.errors import MedtalkError
from medtalk_data.rigs import channel_groups

RIG_SPEC_VERSION = 1

KNOWN_RIGS = ("mediapipe52", "arkit52", "metahuman174", "flame")


@dataclass(frozen=True)
class RigSpec:
    """Ordered channel names, frame rate, value range and named channel groups of a rig."""

    name: str
    channel_names: tuple[str, ...]
    fps: float
    value_range: tuple[float, float] | None = None
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return len(self.channel_names)

    def indices(self, group: str) -> list[int]:
        """Column indices of a named group (empty when the rig has no such channels)."""
        if group not in self.groups:
            raise MedtalkError(f"rig {self.name!r} has no channel group {group!r}; it has {sorted(self.groups)}")
        where = {n: i for i, n in enumerate(self.channel_names)}
        return [where[n] for n in self.groups[group]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": RIG_SPEC_VERSION,
            "name": self.name,
            "channel_names": list(self.channel_names),
            "fps": self.fps,
            "value_range": list(self.value_range) if self.value_range else None,
            "groups": {k: list(v) for k, v in self.groups.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RigSpec:
        if data.get("version") != RIG_SPEC_VERSION:
            raise MedtalkError(f"rig spec version {data.get('version')!r}, this medtalk reads {RIG_SPEC_VERSION}")
        vr = data.get("value_range")
        return cls(
            name=data["name"],
            channel_names=tuple(data["channel_names"]),
            fps=float(data["fps"]),
            value_range=(float(vr[0]), float(vr[1])) if vr else None,
            groups={k: tuple(v) for k, v in data["groups"].items()},
        )

    def same_channels(self, other: RigSpec) -> bool:
        return self.channel_names == other.channel_names


def unique_names(names: list[str]) -> tuple[str, ...]:
    """Make repeated names distinct (MEDTalk's names file repeats two tongue controllers): ``name#2``."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return tuple(out)


def rig_spec_for(rig: str | None, channel_names: list[str], fps: float) -> RigSpec:
    """Build the spec of a manifest's rig from its channel names (groups found by name patterns)."""
    names = unique_names(list(channel_names))
    if not names:
        raise MedtalkError("the manifest has no channel names (no clip with curves); rebuild it with faces found")
    family, groups = channel_groups(names)
    if family == "metahuman":
        return RigSpec(rig or "metahuman174", names, fps, None, groups)
    if family == "arkit":
        return RigSpec(rig or "arkit52", names, fps, (0.0, 1.0), groups)
    return RigSpec(rig or "custom", names, fps, None, groups)
