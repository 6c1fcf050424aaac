"""The rig spec: what one per-frame control vector means (channel names, fps, channel groups).

Every model dimension, metric region and the intensity target are derived from it by channel
*name*, so the same code trains on MediaPipe's 52 blendshapes at 25 fps and on MEDTalk's 174
MetaHuman controllers at 60 fps. It travels inside every checkpoint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from medtalk_data.errors import MedtalkError
from medtalk_data.rigs import MEDIAPIPE_BLENDSHAPES

RIG_SPEC_VERSION = 1

# ARKit-named rigs (MediaPipe's 52, Apple's 52). Regions follow medtalk-spec §6.3/§6.4:
# mouth = jaw + mouth (MLE), upper = brows, lids, cheek squint, nose (FRD; gaze excluded),
# emotion = the regions that carry expression (MEE), intensity = MEDTalk's 14 controllers mapped to ARKit.
_ARKIT_GROUPS: dict[str, str] = {
    "mouth": r"^(jaw|mouth)",
    "jaw": r"^jaw",
    "brows": r"^brow",
    "eyes": r"^eye(Blink|Squint|Wide)",
    "upper": r"^(brow|eye(Blink|Squint|Wide)|cheekSquint|noseSneer)",
    "emotion": r"^(brow|eye(Squint|Wide)|cheekSquint|noseSneer|mouth(Smile|Frown))",
    "intensity": r"^(browDown|browInnerUp|browOuterUp|eyeBlink|eyeWide|eyeSquint|mouthSmile)",
}

# MetaHuman face-board controllers (MEDTalk's 174). The intensity group is exactly the official 14.
_GAZE = r"(?!.*(eye-translate|parallelLook|pupil))"
_METAHUMAN_GROUPS: dict[str, str] = {
    "mouth": r"^CTRL_[CLR]_(mouth|jaw)",
    "jaw": r"^CTRL_[CLR]_jaw",
    "brows": r"^CTRL_[LR]_brow",
    "eyes": rf"^{_GAZE}CTRL_[LR]_eye_",
    "upper": rf"^{_GAZE}CTRL_[LR]_(brow|eye_|eyelashes|nose_wrinkleUpper|ear_up)",
    "emotion": rf"^{_GAZE}CTRL_[LR]_(brow|eye_|nose|mouth_(corner|dimple|sharpCornerPull|upperLipRaise))",
    "intensity": r"^CTRL_[LR]_(brow_(down|lateral|raiseIn|raiseOut)|eye_(blink|squintInner)|mouth_cornerPull)-",
}

KNOWN_RIGS = ("mediapipe52", "arkit52", "metahuman174")


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


def _groups(names: tuple[str, ...], patterns: dict[str, str]) -> dict[str, tuple[str, ...]]:
    return {group: tuple(n for n in names if re.search(rx, n)) for group, rx in patterns.items()}


def rig_spec_for(rig: str | None, channel_names: list[str], fps: float) -> RigSpec:
    """Build the spec of a manifest's rig from its channel names (groups found by name patterns)."""
    names = unique_names(list(channel_names))
    if not names:
        raise MedtalkError("the manifest has no channel names (no clip with curves); rebuild it with faces found")
    if any(n.startswith("CTRL_") for n in names):
        return RigSpec(rig or "metahuman174", names, fps, None, _groups(names, _METAHUMAN_GROUPS))
    arkit_like = sum(n in MEDIAPIPE_BLENDSHAPES for n in names) >= len(names) // 2
    if arkit_like:
        return RigSpec(rig or "arkit52", names, fps, (0.0, 1.0), _groups(names, _ARKIT_GROUPS))
    # Unknown rig (e.g. unnamed ``ctrl_000`` columns): no regions, intensity over every channel.
    groups = {g: () for g in _ARKIT_GROUPS}
    groups["intensity"] = names
    return RigSpec(rig or "custom", names, fps, None, groups)
