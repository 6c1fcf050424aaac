"""``medtalk-models features``: fill a manifest's frozen-backbone feature cache before training.

Training computes the audio features of every clip on its first epoch (Whisper on a 4.5-hour corpus is
hours of CPU) while the GPU waits. This fills the same cache (:class:`~medtalk_models.features.FeatureCache`,
same keys, same files) ahead of time, clip by clip, here or as one Ray task per clip on a cluster whose
nodes all see the manifest and the cache folder. Clips already cached are only checked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medtalk_data.cluster import RayOptions
from medtalk_data.io.files import sha256_cached

from .backbones import build_backbones
from .data import open_manifest
from .features import FeatureCache

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeatureJob:
    """One clip's features: everything a worker needs, as plain values."""

    manifest: str
    clip_id: str
    audio_cfg: dict[str, Any]
    cache_dir: str
    device: str = "cpu"


@dataclass
class FeatureReport:
    clips: int = 0
    computed: int = 0
    cached: int = 0
    engine: str = "local"
    cache_dir: str = ""
    ran_on: dict[str, str] = field(default_factory=dict)


_extractors: dict[str, dict[str, Any]] = {}  # per worker process: built once, reused for every clip
_manifests: dict[str, tuple[Any, dict[str, Any]]] = {}  # path → (manifest, its rows by clip id), read once


def clip_features(job: FeatureJob) -> int:
    """Compute (or find) one clip's cached features for every audio backbone; return how many it computed."""
    import json

    key = json.dumps([job.audio_cfg, job.device], sort_keys=True)
    if key not in _extractors:
        _extractors[key] = build_backbones({"audio": job.audio_cfg}, job.device, needs={"audio"}).audio
    if job.manifest not in _manifests:
        opened = open_manifest(Path(job.manifest))
        _manifests[job.manifest] = opened, {r.clip_id: r for r in opened.rows()}
    manifest, rows = _manifests[job.manifest]
    row = rows[job.clip_id]
    wav = manifest.audio_file(row)
    digest = sha256_cached(wav)
    manifest.check_audio(row, digest)
    computed = 0
    extractors = _extractors[key]
    for part in ("content", "emotion"):
        if part == "emotion" and extractors["emotion"] is extractors["content"]:
            continue
        cache = FeatureCache(Path(job.cache_dir), extractors[part])
        if not cache.path(job.clip_id, wav, digest).is_file():
            computed += 1
        cache.get(job.clip_id, wav, digest)
    return computed


def precompute_features(
    manifest_path: Path,
    cfg: dict[str, Any],
    *,
    device: str = "cpu",
    ray: RayOptions | None = None,
    progress: bool = True,
) -> FeatureReport:
    """Every clip with audio of the manifest, through the config's audio backbones, into the cache training reads."""
    from tqdm import tqdm

    manifest = open_manifest(manifest_path)
    cache_dir = Path(cfg["data"]["cache_dir"]) if cfg["data"]["cache_dir"] else manifest.path / "cache"
    audio_cfg = cfg["audio"]
    jobs = [
        FeatureJob(str(manifest.path.resolve()), r.clip_id, audio_cfg, str(cache_dir.resolve()), device)
        for r in manifest.rows()
        if r.has_audio and r.audio_path
    ]
    report = FeatureReport(clips=len(jobs), engine="ray" if ray else "local", cache_dir=str(cache_dir))
    parts = 1 if audio_cfg["emotion"] == audio_cfg["content"] else 2
    bar = tqdm(total=len(jobs), unit="clip", desc="features", disable=not progress or not jobs, dynamic_ncols=True)

    def done(job: FeatureJob, computed: int, node: str = "") -> None:
        report.computed += computed
        report.cached += parts - computed
        if node:
            report.ran_on[job.clip_id] = node
        bar.update(1)

    try:
        if ray is None or not jobs:
            for job in jobs:
                done(job, clip_features(job))
        else:
            from medtalk_data.cluster import ray_session
            from medtalk_data.errors import MedtalkError

            def lost(job: FeatureJob, why: str) -> None:
                raise MedtalkError(f"{job.clip_id}: the Ray worker computing its features died on both tries ({why})")

            cache_dir.mkdir(parents=True, exist_ok=True)
            with ray_session(ray, shared=[manifest.path], writable=cache_dir) as session:
                session.run(clip_features, jobs, lambda job: (job,), done, lost)
    finally:
        bar.close()
    return report
