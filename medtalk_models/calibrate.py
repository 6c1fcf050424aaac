"""The animation's level per channel, calibrated on the training speech (``train.output_offset``).

The decoder is frozen after stage 1 and the audio map and the label code are fitted through it, so a channel
that moves little next to the others can come out at the wrong level: here jawForward came out below zero on
every frame of the training speech, and clipped to the rig's range it never moved. After stage 3 the run
animates its own training speech as ``animate`` would (each clip's label, its transcript), and each channel's
mean error over the speaking frames is stored and added back to every animation before the pause bridge.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


MAX_CLIPS = 256  # a mean needs no more: a large corpus is calibrated on this many of its clips, evenly spread


def output_offset(checkpoint: Path, manifest: Any) -> list[float] | None:
    """Per channel, the mean of (real − animated) over the speaking, face-tracked frames of the manifest's
    training clips with audio (at most ``MAX_CLIPS`` of them); None when there are none. Runs on the CPU."""
    from .animate import Animator, EmotionControl
    from .data import TrainingData

    started = time.perf_counter()
    animator = Animator(checkpoint)
    try:
        animator.output_offset[:] = 0.0  # the checkpoint's own error, not the error left after an earlier offset
        cfg = dict(animator.cfg)
        cfg["data"] = {**cfg["data"], "window_frames": None}
        data = TrainingData(manifest, animator.rig, cfg, "train", {"audio"}, animator.backbones)
        total, count = np.zeros(animator.rig.dim), 0
        for clip in data.clips[:: max(1, -(-len(data.clips) // MAX_CLIPS))]:
            rows = slice(clip.start, clip.start + clip.length)
            label = animator.emotions[clip.emotion] if clip.emotion >= 0 else "neutral"
            result = animator.animate(
                data.audio_file(clip), EmotionControl(label), transcript=clip.transcript or None,
                rest_in_silence=False, clip_to_range=False,
            )  # fmt: skip
            pred = result.on_frames(clip.length, animator.rig.fps, clip.audio_offset_s)
            use = data.valid[rows] & result.speech_on_frames(clip.length, animator.rig.fps, clip.audio_offset_s)
            total += (data.curves[rows][use] - pred[use]).sum(0)
            count += int(use.sum())
    finally:
        animator.close()
    if not count:
        return None
    offset = total / count
    worst = int(np.argmax(np.abs(offset)))
    log.info(
        "output offset from %d speaking training frames in %.1f s: largest %s %+.4f", count,
        time.perf_counter() - started, animator.rig.channel_names[worst], offset[worst],
    )  # fmt: skip
    return [float(v) for v in offset]
