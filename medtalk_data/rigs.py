"""Blendshape channel names. Curves are always read and written by name, never by position.

MediaPipe reports ``_neutral`` followed by 51 of Apple's 52 ARKit names in alphabetical order
(no ``tongueOut``). Apple's own order (also the Live Link UDP order) is kept here so exporters
can reorder by name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

MEDIAPIPE_BLENDSHAPES: tuple[str, ...] = (
    "_neutral",
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft",
    "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight",
    "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight",
    "jawForward", "jawLeft", "jawOpen", "jawRight",
    "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft",
    "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper",
    "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft",
    "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)  # fmt: skip

# Apple ARKit / Live Link UDP order (52 names, with tongueOut).
ARKIT52: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight",
    "eyeLookOutRight", "eyeLookUpRight", "eyeSquintRight", "eyeWideRight", "jawForward", "jawLeft",
    "jawRight", "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight",
    "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft",
    "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight", "mouthRollLower", "mouthRollUpper",
    "mouthShrugLower", "mouthShrugUpper", "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft",
    "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight", "browDownLeft", "browDownRight",
    "browInnerUp", "browOuterUpLeft", "browOuterUpRight", "cheekPuff", "cheekSquintLeft",
    "cheekSquintRight", "noseSneerLeft", "noseSneerRight", "tongueOut",
)  # fmt: skip

N_LANDMARKS = 478

# ARKit-named rigs (MediaPipe's 52, Apple's 52). Regions follow medtalk-spec §6.3/§6.4:
# mouth = jaw + mouth (MLE), upper = brows, lids, cheek squint, nose (FRD; gaze excluded),
# emotion = the regions that carry expression (MEE), intensity = MEDTalk's 14 controllers mapped to ARKit.
ARKIT_GROUPS: dict[str, str] = {
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
METAHUMAN_GROUPS: dict[str, str] = {
    "mouth": r"^CTRL_[CLR]_(mouth|jaw)",
    "jaw": r"^CTRL_[CLR]_jaw",
    "brows": r"^CTRL_[LR]_brow",
    "eyes": rf"^{_GAZE}CTRL_[LR]_eye_",
    "upper": rf"^{_GAZE}CTRL_[LR]_(brow|eye_|eyelashes|nose_wrinkleUpper|ear_up)",
    "emotion": rf"^{_GAZE}CTRL_[LR]_(brow|eye_|nose|mouth_(corner|dimple|sharpCornerPull|upperLipRaise))",
    "intensity": r"^CTRL_[LR]_(brow_(down|lateral|raiseIn|raiseOut)|eye_(blink|squintInner)|mouth_cornerPull)-",
}


def channel_groups(names: Sequence[str]) -> tuple[str, dict[str, tuple[str, ...]]]:
    """The rig family of ``names`` ("metahuman", "arkit", "flame" or "custom") and its named channel groups.

    The one definition that the manifest (its reference frames) and the models (regions, Int(x))
    share; a FLAME rig ("flame") has the jaw and the mouth but no upper-face channels. A custom rig
    (e.g. unnamed ``ctrl_000`` columns) has no regions and intensity over every channel.
    """
    family, groups = _channel_groups(tuple(names))
    return family, dict(groups)


# FLAME as curves (expression coefficients + jaw rotation): the coefficients are global (PCA over the whole
# face), so only the jaw is a region of its own; the mouth is everything that moves the lips (all of it), and
# there is no upper-face subset of channels (regions on FLAME's mesh need the user's FLAME model).
FLAME_GROUPS: dict[str, str] = {
    "mouth": r"^(exp_|jaw_)",
    "jaw": r"^jaw_",
    "brows": r"$^",
    "eyes": r"$^",
    "upper": r"$^",
    "emotion": r"^exp_",
    "intensity": r"^exp_",
}


@lru_cache(maxsize=16)
def _channel_groups(names: tuple[str, ...]) -> tuple[str, dict[str, tuple[str, ...]]]:
    if is_flame(names):
        return "flame", {group: tuple(n for n in names if re.search(rx, n)) for group, rx in FLAME_GROUPS.items()}
    if any(n.startswith("CTRL_") for n in names):
        family, patterns = "metahuman", METAHUMAN_GROUPS
    elif sum(n in MEDIAPIPE_BLENDSHAPES for n in names) >= len(names) // 2 and names:
        family, patterns = "arkit", ARKIT_GROUPS
    else:
        return "custom", {**{g: () for g in ARKIT_GROUPS}, "intensity": names}
    return family, {group: tuple(n for n in names if re.search(rx, n)) for group, rx in patterns.items()}


FLAME_JAW = ("jaw_x", "jaw_y", "jaw_z")  # FLAME's jaw rotation, axis-angle (rad)


def flame_channels(n_expression: int) -> tuple[str, ...]:
    """FLAME as a rig of curves: the expression coefficients ``exp_000``… then the jaw rotation."""
    return (*(f"exp_{i:03d}" for i in range(n_expression)), *FLAME_JAW)


def is_flame(names: Sequence[str]) -> bool:
    """Curves named like :func:`flame_channels` (any number of expression coefficients)."""
    names = list(names)
    return len(names) > len(FLAME_JAW) and tuple(names) == flame_channels(len(names) - len(FLAME_JAW))
