"""Fit FLAME to a clip's landmarks while the face stage streams its grid frames.

Per clip: one identity (shape β), fitted on up to ``identity_frames`` frames of the first window
that shows a face; per frame: expression ψ, jaw, eye and head (global) rotation and a
weak-perspective camera (scale, 2-D shift). The grid frames are fitted ``window_frames`` at a
time (one batched L-BFGS problem per window, with a smoothness term between neighbouring frames
and across window edges), so memory is bounded by the window, not by the clip.

The landmark error is measured in millimetres on the face (image distance divided by the
camera scale) and passed through a Huber function, so landmarks MediaPipe guesses badly (profile
views) pull less; priors on every coefficient keep such frames stable. Camera coordinates: FLAME
(+y up, +z towards the viewer) turned 180° about x, then projected orthographically; image units
are the picture's height (x scaled by width/height), so the scale is image heights per metre.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import MedtalkError
from ..head_frame import similarity_transform
from ..pose import rotation_vector
from .embedding import LandmarkEmbedding, check_embedding_matches, load_embedding
from .model_file import FlameModel, load_flame_model
from .settings import FlameSettings
from .types import FlameFrame, FlameSummary

if TYPE_CHECKING:
    from ..grid import FrameSample

# face.flame.landmarks → (the embedding scheme it needs, what it fits, the FLAME download to pass)
EMBEDDING_FOR = {
    "mediapipe": ("mediapipe", "MediaPipe's 478 landmarks", "mediapipe_landmark_embedding.npz"),
    "fan": ("ibug68", "FAN's 68 iBUG points", "flame_static_embedding.pkl (FLAME's 68-point embedding)"),
}
IRIS_CENTRES = (473, 468)  # MediaPipe's iris centres of the subject's left and right eye
FLIP = np.diag([1.0, -1.0, -1.0])  # FLAME → camera (180° about x)
# How many millimetres of face motion one unit of each parameter is worth, so that one smoothness
# weight serves them all: a jaw or head turn of 1 rad moves points ~10 cm from the joint, an eye
# turn moves the pupil by the eyeball's radius (~12 mm), expression coefficients are mm-scale.
MM_PER_RAD_HEAD = 100.0
MM_PER_RAD_EYE = 12.0
MM_PER_UNIT_LOG_SCALE = 70.0  # a 1 % change of scale moves the face's rim (~7 cm from its centre) by ~0.7 mm


@dataclass
class FlameSetup:
    """The model, embedding and the vertex subset the landmarks need; loaded once per worker."""

    settings: FlameSettings
    model: FlameModel
    embedding: LandmarkEmbedding
    embedding_rms_mm: float
    layer: Any  # FlameLayer over ``vertex_ids``
    corners: np.ndarray  # (K, 3) indices into the subset: each landmark's triangle
    pupils: np.ndarray  # (2,) indices into the subset: front vertex of the left and right eyeball
    eye_joints: tuple[int, int]
    device: Any
    dtype: Any = None


def _torch() -> Any:
    try:
        import torch
    except ImportError as err:
        raise MedtalkError("the flame backend needs torch: pip install 'medtalk[flame]'") from err
    return torch


def load_setup(settings: FlameSettings) -> FlameSetup:
    """Read and check the user's files (one-line errors naming them) and build the layer."""
    torch = _torch()
    from ..canonical_mesh import load_canonical_mesh
    from .layer import FlameLayer

    if settings.device == "cuda" and not torch.cuda.is_available():
        raise MedtalkError("face.flame.device is cuda, but torch sees no CUDA device; use --flame-device cpu")
    model = load_flame_model(settings.model_path, settings.version)
    embedding = load_embedding(settings.embedding_path, model)
    wanted = EMBEDDING_FOR[settings.landmarks]
    if embedding.scheme != wanted[0]:
        raise MedtalkError(
            f"{embedding.source}: a {embedding.scheme} embedding; face.flame.landmarks {settings.landmarks} fits "
            f"{wanted[1]}: pass {wanted[2]}"
        )
    rms = check_embedding_matches(embedding, model, load_canonical_mesh().vertices)
    if settings.n_expression > model.n_expression:
        raise MedtalkError(f"face.flame.n_expression {settings.n_expression}: {model.source} has {model.n_expression}")
    eye_joints = model.eye_joints()
    pupils = [_front_vertex(model, j) for j in eye_joints]
    tri = model.faces[embedding.face_index]  # (K, 3) mesh vertex ids
    vertex_ids, inverse = np.unique(np.concatenate([tri.reshape(-1), pupils]), return_inverse=True)
    corners = inverse[: tri.size].reshape(tri.shape)
    layer = FlameLayer(model, settings.n_shape, settings.n_expression, vertex_ids)
    device = torch.device(settings.device)
    layer = layer.to(device=device, dtype=torch.float32)  # float64 fits the same to 0.1 mm at 1.2x the time
    torch.optim.LBFGS([torch.zeros(1, requires_grad=True)])  # its first construction imports ~2 s of torch: here, once
    return FlameSetup(
        settings, model, embedding, rms, layer, corners, inverse[tri.size :], eye_joints, device, torch.float32
    )


def _front_vertex(model: FlameModel, joint: int) -> int:
    """The eyeball vertex furthest towards the viewer: where the pupil is."""
    ball = np.flatnonzero(model.weights[:, joint] > 0.5)
    if ball.size == 0:
        raise MedtalkError(f"{model.source}: no vertices follow eye joint {joint}; not a FLAME model")
    return int(ball[np.argmax(model.v_template[ball, 2])])


@dataclass
class _Window:
    """The frames of one window that have landmarks, as arrays."""

    uv: np.ndarray  # (N, K, 2) image-height units
    start: np.ndarray  # (N, K, 3) MediaPipe's 3-D points nearest each landmark, same units: the starting
    # head pose and scale only (NaN: start from the landmarks in 2-D)
    iris: np.ndarray  # (N, 2, 2)
    grid: np.ndarray  # (N,) grid positions of these frames within the window (gaps where no face)


@dataclass
class ClipFlameFit:
    """Stream grid frames through :meth:`push`/:meth:`finish`; get them back with ``flame`` filled."""

    setup: FlameSetup
    aspect: float = 1.0  # frame width / height, set by the face stage from the first decoded frame
    identity: np.ndarray | None = None
    _buffer: list[FrameSample] = field(default_factory=list)
    _tail: dict[str, np.ndarray] | None = None  # the last window's final frames (≤ 2, consecutive, with a face)
    _residuals: list[float] = field(default_factory=list)
    _seconds: float = 0.0

    def push(self, samples: list[FrameSample]) -> list[FrameSample]:
        self._buffer.extend(samples)
        out: list[FrameSample] = []
        while len(self._buffer) >= self.setup.settings.window_frames:
            n = self.setup.settings.window_frames
            window, self._buffer = self._buffer[:n], self._buffer[n:]
            out.extend(self._fit(window))
        return out

    def finish(self) -> list[FrameSample]:
        window, self._buffer = self._buffer, []
        return self._fit(window) if window else []

    def summary(self) -> FlameSummary:
        s, res = self.setup, np.asarray(self._residuals)
        return FlameSummary(
            version=s.model.version,
            model_sha256=s.model.sha256,
            embedding=s.embedding.scheme,
            n_shape=s.settings.n_shape,
            n_expression=s.settings.n_expression,
            device=s.settings.device,
            n_fitted=len(res),
            residual_mm_mean=float(res.mean()) if res.size else 0.0,
            residual_mm_median=float(np.median(res)) if res.size else 0.0,
            residual_mm_p95=float(np.percentile(res, 95)) if res.size else 0.0,
            embedding_rms_mm=round(s.embedding_rms_mm, 3),
            seconds=round(self._seconds, 4),
        )

    def metadata(self) -> dict[str, Any]:
        """What frames.parquet records about the fit (its ``medtalk_flame`` key)."""
        s = self.setup
        return {
            "version": s.model.version,
            "model_sha256": s.model.sha256,
            "n_shape": s.settings.n_shape,
            "n_expression": s.settings.n_expression,
            "shape": [float(x) for x in (self.identity if self.identity is not None else [])],
            "embedding": s.embedding.scheme,
            "landmarks": s.settings.landmarks,
            "eye_pose": "left eye then right eye, axis-angle (rad)",
            "camera": "weak perspective: scale (image heights per metre), shift x, y (image heights; x scaled by "
            "width/height); FLAME turned 180 degrees about x, then projected",
        }

    def _fit(self, window: list[FrameSample]) -> list[FrameSample]:
        started = time.perf_counter()
        fan = self.setup.settings.landmarks == "fan"
        rows = [i for i, s in enumerate(window) if s.face is not None and (not fan or s.face.fan is not None)]
        if not rows:
            self._tail = None
            return window
        data = self._arrays(window, rows)
        anchor = self._tail if rows[0] == 0 else None
        if self.identity is None:
            # the identity first, on up to identity_frames frames spread over the window; then every frame with the
            # identity fixed (fitting both at once leaves the jaw and the shape trading places: jaw r 0.54 vs 0.94
            # on the synthetic test clip)
            count = min(len(rows), self.setup.settings.identity_frames)
            take = np.linspace(0, len(rows) - 1, count).round().astype(int)
            subset = _Window(data.uv[take], data.start[take], data.iris[take], np.arange(len(take)) * 3)  # no runs
            self.identity = solve(self.setup, subset, self.aspect, None, None)[0]
        _, params, residual = solve(self.setup, data, self.aspect, self.identity, anchor)
        out = list(window)
        for j, i in enumerate(rows):
            frame = FlameFrame(
                expression=params["expression"][j].astype(np.float32),
                jaw_pose=params["jaw"][j].astype(np.float32),
                eye_pose=params["eyes"][j].astype(np.float32),
                global_pose=params["rotation"][j].astype(np.float32),
                camera=np.concatenate([params["scale"][j : j + 1], params["shift"][j]]).astype(np.float32),
                residual_mm=float(residual[j]),
            )
            out[i] = replace(window[i], flame=frame)
        self._residuals.extend(float(r) for r in residual)
        # the frames the next window's smoothness continues from: the final run of consecutive faces, ≤ 2 long
        tail = 2 if len(rows) > 1 and rows[-2] == len(window) - 2 else 1
        self._tail = {k: v[-tail:] for k, v in params.items()} if rows[-1] == len(window) - 1 else None
        self._seconds += time.perf_counter() - started
        return out

    def _arrays(self, window: list[FrameSample], rows: list[int]) -> _Window:
        ids = self.setup.embedding.landmark_ids
        lm = np.stack([window[i].face.landmarks for i in rows]).astype(np.float64)  # type: ignore[union-attr]
        lm[..., 0] *= self.aspect
        lm[..., 2] *= self.aspect  # MediaPipe's z is on x's scale
        start = lm[:, self.setup.embedding.mediapipe_ids()]
        if self.setup.settings.landmarks == "fan":  # FAN's 2-D points; MediaPipe's (same face) give the start
            fan = np.stack([window[i].face.fan for i in rows]).astype(np.float64)  # type: ignore[union-attr]
            uv = fan[:, ids, :2] * np.array([self.aspect, 1.0])
            return _Window(uv, start, np.full((len(rows), 2, 2), np.nan), np.asarray(rows))
        iris = lm[:, list(IRIS_CENTRES), :2] if lm.shape[1] > max(IRIS_CENTRES) else np.full((len(rows), 2, 2), np.nan)
        return _Window(lm[:, ids, :2], start, iris, np.asarray(rows))


def initial_camera(setup: FlameSetup, data: _Window) -> tuple[np.ndarray, np.ndarray]:
    """Head rotation (N, 3) and scale (N,) from a similarity fit of the template's landmarks to MediaPipe's
    3-D points, or, without them, from an affine camera fitted to the landmarks in 2-D (weaker: a face is
    nearly flat, so its pitch is poorly seen in 2-D)."""
    template = setup.embedding.template_points(setup.model) @ FLIP  # camera frame, metres
    if not np.isfinite(data.start).all():
        return affine_camera(template, data.uv)
    scale, rot, _ = similarity_transform(data.start, template, np.ones(len(template)))  # observed → template
    rotations = np.stack([rotation_vector(FLIP @ r.T @ FLIP) for r in rot])  # template → observed, in FLAME
    return rotations, 1.0 / scale


def affine_camera(template: np.ndarray, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the least-squares affine projection uv ≈ A·x + b of the template (K, 3; camera frame)
    onto the (N, K, 2) points, made a scaled rotation: A's rows orthonormalised, the third row their
    cross product. Returns FLAME head rotations (N, 3) and scales (N,)."""
    x = template - template.mean(axis=0)
    rotations, scales = [], []
    for points in uv:
        a = np.linalg.lstsq(x, points - points.mean(axis=0), rcond=None)[0].T  # (2, 3)
        norms = np.linalg.norm(a, axis=1)
        r1 = a[0] / norms[0]
        r2 = a[1] - (a[1] @ r1) * r1
        r2 /= np.linalg.norm(r2)
        camera = np.stack([r1, r2, np.cross(r1, r2)])  # template → observed, camera frame
        rotations.append(rotation_vector(FLIP @ camera @ FLIP))
        scales.append(norms.mean())
    return np.stack(rotations), np.asarray(scales)


def solve(
    setup: FlameSetup,
    data: _Window,
    aspect: float,
    identity: np.ndarray | None,
    anchor: dict[str, np.ndarray] | None,
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """One batched fit. ``identity`` None fits it too. Returns (identity, per-frame parameters,
    per-frame mean landmark distance in mm)."""
    torch = _torch()
    st, dev, dt = setup.settings, setup.device, setup.dtype
    n = len(data.uv)

    def tensor(a: Any) -> Any:
        return torch.as_tensor(np.asarray(a, dtype=np.float32), device=dev, dtype=dt)

    rot0, scale0 = initial_camera(setup, data)
    uv_obs, iris_obs = tensor(data.uv), tensor(data.iris)
    iris_ok = ~torch.isnan(iris_obs).any(-1)
    iris_obs = torch.nan_to_num(iris_obs)
    bary = tensor(setup.embedding.barycentric)
    corners = torch.as_tensor(setup.corners, device=dev)
    pupils = torch.as_tensor(setup.pupils, device=dev)
    mm_per_unit = 1000.0 / tensor(scale0)[:, None]  # fixed: the loss's yardstick must not move with the fit
    flip_uv = tensor([1.0, -1.0])
    n_anchor = 0 if anchor is None else len(anchor["expression"])
    grid = np.concatenate([np.arange(-n_anchor, 0), data.grid])
    runs = np.flatnonzero((np.diff(grid[:-1]) == 1) & (np.diff(grid[1:]) == 1)) if len(grid) > 2 else np.zeros(0, int)
    triples = torch.as_tensor(np.stack([runs, runs + 1, runs + 2], axis=1), device=dev, dtype=torch.long)

    # Every unknown is optimised in units that move the face by about a millimetre, so the problem is
    # well conditioned for L-BFGS (in raw units a head shift moves points 100x more than a coefficient).
    shape = tensor(identity if identity is not None else np.zeros(st.n_shape)).requires_grad_(identity is None)
    expression = torch.zeros(n, st.n_expression, device=dev, dtype=dt, requires_grad=True)
    jaw_n = torch.zeros(n, 3, device=dev, dtype=dt, requires_grad=True)
    eyes_n = torch.zeros(n, 6, device=dev, dtype=dt, requires_grad=True)
    rotation0 = tensor(rot0)
    rotation_n = torch.zeros(n, 3, device=dev, dtype=dt, requires_grad=True)
    log_scale0 = tensor(np.log(scale0))
    log_scale_n = torch.zeros(n, device=dev, dtype=dt, requires_grad=True)
    shift_n = torch.zeros(n, 2, device=dev, dtype=dt, requires_grad=True)
    zeros3 = torch.zeros(n, 3, device=dev, dtype=dt)
    left, right = setup.eye_joints

    def physical() -> dict[str, Any]:
        return {
            "jaw": jaw_n / MM_PER_RAD_HEAD,
            "eyes": eyes_n / MM_PER_RAD_EYE,
            "rotation": rotation0 + rotation_n / MM_PER_RAD_HEAD,
            "scale": torch.exp(log_scale0 + log_scale_n / MM_PER_UNIT_LOG_SCALE),
            "shift": shift0 + shift_n * mm_to_image,
        }

    def project(p: dict[str, Any]) -> tuple[Any, Any]:
        joints = [p["rotation"], zeros3, p["jaw"], None, None]
        joints[left], joints[right] = p["eyes"][:, :3], p["eyes"][:, 3:]
        verts = setup.layer(shape, expression, torch.cat(joints, dim=1))
        lmk = torch.einsum("kc,nkcd->nkd", bary, verts[:, corners])
        scale = p["scale"][:, None, None]
        return scale * lmk[..., :2] * flip_uv + p["shift"][:, None], scale * verts[:, pupils, :2] * flip_uv + p[
            "shift"
        ][:, None]

    mm_to_image = tensor(scale0)[:, None] / 1000.0
    shift0 = torch.zeros(n, 2, device=dev, dtype=dt)
    with torch.no_grad():  # the shift that centres the posed template on the observed landmarks
        lmk_uv, _ = project(physical())
        shift0 = (uv_obs - lmk_uv).mean(dim=1)

    def huber(d: Any) -> Any:
        delta = st.robust_mm
        return torch.where(d < delta, 0.5 * d**2, delta * (d - 0.5 * delta))

    anchor_t = {k: tensor(v) for k, v in anchor.items()} if anchor is not None else None

    def acceleration(p: dict[str, Any]) -> Any:
        """Σ squared second differences over runs of three neighbouring frames, in mm-equivalents: steady
        motion costs nothing, jitter does. The previous window's last frames lead into this one."""
        total = 0
        for name, t, mm in (
            ("expression", expression, 1.0),
            ("jaw", p["jaw"], MM_PER_RAD_HEAD),
            ("rotation", p["rotation"], MM_PER_RAD_HEAD),
            ("eyes", p["eyes"], MM_PER_RAD_EYE),
        ):
            seq = torch.cat([anchor_t[name], t]) if anchor_t is not None else t
            accel = seq[triples[:, 0]] - 2 * seq[triples[:, 1]] + seq[triples[:, 2]]
            total = total + mm**2 * (accel**2).sum()
        return total

    def loss() -> Any:
        p = physical()
        lmk_uv, pupil_uv = project(p)
        dist = torch.sqrt(((lmk_uv - uv_obs) ** 2).sum(-1) + 1e-12) * mm_per_unit
        total = huber(dist).mean()
        if st.iris_weight > 0 and bool(iris_ok.any()):
            d_iris = torch.sqrt(((pupil_uv - iris_obs) ** 2).sum(-1) + 1e-12) * mm_per_unit
            total = total + st.iris_weight * (huber(d_iris) * iris_ok).sum() / iris_ok.sum()
        total = total + st.expression_prior * (expression**2).sum(-1).mean()
        total = total + st.jaw_prior * (p["jaw"] ** 2).sum(-1).mean() + st.eye_prior * (p["eyes"] ** 2).sum(-1).mean()
        if identity is None:
            total = total + st.shape_prior * (shape**2).sum()
        if st.smoothness > 0 and len(triples):
            total = total + st.smoothness * acceleration(p) / n
        return total

    params = [expression, jaw_n, eyes_n, rotation_n, log_scale_n, shift_n] + ([shape] if identity is None else [])
    optimiser = torch.optim.LBFGS(
        params,
        lr=1.0,
        max_iter=st.iterations_fan if st.landmarks == "fan" else st.iterations,
        history_size=20,
        tolerance_grad=1e-9,
        tolerance_change=1e-12,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Any:
        optimiser.zero_grad()
        value = loss()
        value.backward()
        return value

    optimiser.step(closure)
    with torch.no_grad():
        p = physical()
        lmk_uv, _ = project(p)
        dist = torch.sqrt(((lmk_uv - uv_obs) ** 2).sum(-1)) * 1000.0 / p["scale"][:, None]
        residual = dist.mean(dim=1).cpu().numpy()
        out = {k: v.cpu().numpy() for k, v in p.items()}
        out["expression"] = expression.detach().cpu().numpy()
    if not all(math.isfinite(float(np.abs(v).sum())) for v in out.values()):
        raise MedtalkError(
            "the FLAME fit diverged (non-finite parameters); lower face.flame.iterations or raise priors"
        )
    return shape.detach().cpu().numpy(), out, residual
