"""A synthetic morphable model in FLAME's file layout, for tests without the licence-gated FLAME.

Its template is MediaPipe's canonical face (so MediaPipe landmark i is vertex i) plus two
eyeballs; the identity and expression bases are random smooth displacement fields scaled like
FLAME's (a unit coefficient moves the face by a few millimetres); the joints, skinning weights and
kinematic tree follow FLAME's (global, neck, jaw, left eye, right eye). It is written the way
FLAME's own ``generic_model.pkl`` is: a pickled dict whose arrays are partly chumpy ``Ch`` objects
(a stand-in class registered as ``chumpy.ch.Ch`` while pickling, so the pickle names that class)
and a scipy CSC joint regressor.
"""

from __future__ import annotations

import pickle
import sys
import types
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse

from medtalk_data.face.canonical_mesh import load_canonical_mesh

N_SHAPE_TOTAL, N_EXPRESSION_TOTAL = 300, 100
EYE_RADIUS_M = 0.012
LEFT_EYE = (263, 362, 386, 374)  # the subject's left eye corners and lids (MediaPipe ids, +x)
RIGHT_EYE = (33, 133, 159, 145)


@dataclass
class StandIn:
    pkl: Path
    embedding: Path
    n_vertices: int
    landmark_ids: np.ndarray
    ibug_embedding: Path  # a 51-point iBUG embedding, pickled like flame_static_embedding.pkl


class _Ch:
    """Pickles like chumpy's Ch: its instance dict (with the array under "x") as the state."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = x
        self._dirty_vars = set()
        self._itr = None


@contextmanager
def _chumpy_named():
    """Make the stand-in class importable as chumpy.ch.Ch while pickling (so the pickle names it)."""
    chumpy, ch = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")
    _Ch.__module__, _Ch.__qualname__, _Ch.__name__ = "chumpy.ch", "Ch", "Ch"
    ch.Ch = _Ch
    chumpy.ch = ch
    saved = {k: sys.modules.get(k) for k in ("chumpy", "chumpy.ch")}
    sys.modules.update({"chumpy": chumpy, "chumpy.ch": ch})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def _sphere(centre: np.ndarray, radius: float, rings: int = 6, segments: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """A UV sphere with its poles on ±z (vertex 0 is the front pole, +z)."""
    verts = [centre + np.array([0.0, 0.0, radius])]
    for r in range(1, rings):
        theta = np.pi * r / rings
        for s in range(segments):
            phi = 2 * np.pi * s / segments
            verts.append(
                centre + radius * np.array([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)])
            )
    verts.append(centre + np.array([0.0, 0.0, -radius]))
    faces = []
    for s in range(segments):
        faces.append([0, 1 + s, 1 + (s + 1) % segments])
    for r in range(rings - 2):
        a, b = 1 + r * segments, 1 + (r + 1) * segments
        for s in range(segments):
            s2 = (s + 1) % segments
            faces += [[a + s, b + s, b + s2], [a + s, b + s2, a + s2]]
    last, base = len(verts) - 1, 1 + (rings - 2) * segments
    for s in range(segments):
        faces.append([base + s, last, base + (s + 1) % segments])
    return np.asarray(verts), np.asarray(faces)


def _smooth_fields(rng: np.random.Generator, points: np.ndarray, n: int, rms_m: np.ndarray) -> np.ndarray:
    """(P, 3, n) random smooth displacement fields (Gaussian bumps, 3 cm wide), field i with RMS rms_m[i]."""
    centres = points[rng.integers(0, len(points), size=(n, 6))]  # (n, 6, 3)
    amps = rng.normal(size=(n, 6, 3))
    d2 = ((points[None, None] - centres[:, :, None]) ** 2).sum(-1)  # (n, 6, P)
    fields = np.einsum("nkp,nkc->pcn", np.exp(-d2 / (2 * 0.03**2)), amps)
    rms = np.sqrt((fields**2).sum(1).mean(0))
    return fields / rms * rms_m


def _regressor_row(template: np.ndarray, support: list[int], point: np.ndarray) -> np.ndarray:
    """Least-norm weights on ``support`` vertices with Σw = 1 and Σ w·v = point (joints are vertex mixes)."""
    a = np.vstack([template[support].T, np.ones(len(support))])
    w, *_ = np.linalg.lstsq(a, np.append(point, 1.0), rcond=None)
    row = np.zeros(len(template))
    row[support] = w
    return row


def build_model(rng: np.random.Generator) -> dict[str, np.ndarray]:
    mesh = load_canonical_mesh()
    face = mesh.vertices.astype(np.float64) * 0.01  # cm → m
    eyes, eye_faces = [], []
    for ids in (LEFT_EYE, RIGHT_EYE):
        centre = face[list(ids)].mean(0) - [0, 0, EYE_RADIUS_M]
        verts, tris = _sphere(centre, EYE_RADIUS_M * 0.9)
        eyes.append(verts)
        eye_faces.append(tris)
    n_face, n_eye = len(face), len(eyes[0])
    template = np.vstack([face, *eyes])
    faces = np.vstack([mesh.triangles, eye_faces[0] + n_face, eye_faces[1] + n_face + n_eye]).astype(np.uint32)
    v = len(template)
    left_ball = np.arange(n_face, n_face + n_eye)
    right_ball = np.arange(n_face + n_eye, v)

    # joints: root behind the nose, neck below it, jaw at the ear line, eyes at the eyeball centres
    jaw_point = np.array([0.0, face[[234, 454], 1].mean() - 0.02, face[[234, 454], 2].mean()])
    points = [
        np.array([0.0, 0.0, -0.03]),
        np.array([0.0, -0.06, -0.04]),
        jaw_point,
        template[left_ball].mean(0),
        template[right_ball].mean(0),
    ]
    support = [1, 4, 10, 152, 234, 454, 33, 263, 13, 14]
    regressor = np.vstack(
        [_regressor_row(template, support, p) for p in points[:3]]
        + [_regressor_row(template, list(b), p) for b, p in ((left_ball, points[3]), (right_ball, points[4]))]
    )

    weights = np.zeros((v, 5))
    mouth_y = face[[13, 14], 1].mean()
    jaw_w = np.clip((mouth_y - face[:, 1]) / 0.01 + 0.5, 0.0, 1.0) * (face[:, 2] > -0.01)
    weights[:n_face, 2] = jaw_w
    weights[:n_face, 1] = 1.0 - jaw_w
    weights[left_ball, 3] = 1.0
    weights[right_ball, 4] = 1.0

    shape_rms = 0.004 * 0.9 ** np.arange(N_SHAPE_TOTAL)
    expr_rms = 0.003 * 0.9 ** np.arange(N_EXPRESSION_TOTAL)
    shapedirs = np.zeros((v, 3, N_SHAPE_TOTAL + N_EXPRESSION_TOTAL))
    shapedirs[:n_face, :, :N_SHAPE_TOTAL] = _smooth_fields(rng, face, N_SHAPE_TOTAL, shape_rms)
    shapedirs[:n_face, :, N_SHAPE_TOTAL:] = _smooth_fields(rng, face, N_EXPRESSION_TOTAL, expr_rms)
    for ball, ids in ((left_ball, LEFT_EYE), (right_ball, RIGHT_EYE)):  # eyeballs follow their lids rigidly
        shapedirs[ball, :, :N_SHAPE_TOTAL] = shapedirs[list(ids), :, :N_SHAPE_TOTAL].mean(0)
    posedirs = _smooth_fields(rng, template, 36, np.full(36, 2e-4))
    kintree = np.array([[2**32 - 1, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64)
    return {
        "v_template": template.astype(np.float32),
        "f": faces,
        "shapedirs": shapedirs.astype(np.float32),
        "posedirs": posedirs.astype(np.float32),
        "J_regressor": regressor.astype(np.float32),
        "weights": weights.astype(np.float32),
        "kintree_table": kintree,
        "J": (regressor @ template).astype(np.float32),
    }


def write_pickle(model: dict[str, np.ndarray], path: Path, protocol: int = 2) -> None:
    """FLAME's layout: chumpy arrays for the bases, template, weights and joints, a CSC regressor."""
    with _chumpy_named():
        payload = {
            "v_template": _Ch(model["v_template"]),
            "f": model["f"],
            "shapedirs": _Ch(model["shapedirs"]),
            "posedirs": model["posedirs"],
            "J_regressor": scipy.sparse.csc_matrix(model["J_regressor"]),
            "weights": _Ch(model["weights"]),
            "kintree_table": model["kintree_table"],
            "J": _Ch(model["J"]),
            "bs_style": "lbs",
            "bs_type": "lrotmin",
        }
        path.write_bytes(pickle.dumps(payload, protocol=protocol))


def write_embedding(model: dict[str, np.ndarray], path: Path, ids: np.ndarray) -> None:
    """A MediaPipe embedding: per landmark a triangle holding that vertex, weighted mostly towards it."""
    faces = model["f"].astype(np.int64)
    face_idx, bary = [], []
    for i in ids:
        tri = int(np.flatnonzero((faces == i).any(axis=1))[0])
        corner = int(np.flatnonzero(faces[tri] == i)[0])
        b = np.full(3, 0.1)
        b[corner] = 0.8
        face_idx.append(tri)
        bary.append(b)
    np.savez(
        path,
        lmk_face_idx=np.asarray(face_idx),
        lmk_b_coords=np.asarray(bary, dtype=np.float32),
        landmark_indices=np.asarray(ids),
    )


def make_standin(folder: Path, seed: int = 0, protocol: int = 2) -> StandIn:
    rng = np.random.default_rng(seed)
    model = build_model(rng)
    folder.mkdir(parents=True, exist_ok=True)
    pkl, emb = folder / "generic_model.pkl", folder / "mediapipe_landmark_embedding.npz"
    write_pickle(model, pkl, protocol)
    ids = np.arange(0, 468, 4)
    write_embedding(model, emb, ids)
    write_ibug_embedding(model, folder / "flame_static_embedding.pkl")
    return StandIn(pkl, emb, len(model["v_template"]), ids, folder / "flame_static_embedding.pkl")


@dataclass
class Truth:
    """Known parameters of a synthetic clip (T frames)."""

    shape: np.ndarray  # (S,)
    expression: np.ndarray  # (T, E)
    jaw: np.ndarray  # (T, 3)
    eyes: np.ndarray  # (T, 6) left, right
    rotation: np.ndarray  # (T, 3)
    scale: np.ndarray  # (T,) image heights per metre
    shift: np.ndarray  # (T, 2)


def random_truth(rng: np.random.Generator, frames: int, n_shape: int, n_expression: int, max_yaw_deg: float) -> Truth:
    """A smooth head and face motion: yaw sweeping to ±max_yaw_deg, some pitch, a talking jaw."""
    t = np.linspace(0, 1, frames)
    yaw = np.deg2rad(max_yaw_deg) * np.sin(2 * np.pi * t)
    pitch = np.deg2rad(10) * np.sin(2 * np.pi * 1.7 * t + 0.3)
    rotation = np.stack([pitch, yaw, np.deg2rad(5) * np.sin(2 * np.pi * 0.8 * t)], axis=1)
    jaw = np.zeros((frames, 3))
    jaw[:, 0] = 0.12 * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))  # opens up to ~7°
    expression = 1.2 * np.sin(
        2 * np.pi * (np.arange(n_expression)[None] * 0.37 + 1.5) * t[:, None] + np.arange(n_expression)[None]
    )
    eyes = np.zeros((frames, 6))
    eyes[:, 1] = eyes[:, 4] = np.deg2rad(12) * np.sin(2 * np.pi * 2 * t)
    return Truth(
        shape=rng.normal(size=n_shape),
        expression=expression,
        jaw=jaw,
        eyes=eyes,
        rotation=rotation,
        scale=np.full(frames, 2.0) + 0.2 * t,
        shift=np.stack([0.7 + 0.05 * t, 0.5 - 0.03 * t], axis=1),
    )


def write_ibug_embedding(model: dict[str, np.ndarray], path: Path) -> None:
    """A 51-point iBUG embedding (points 17-67) pickled as FLAME's flame_static_embedding.pkl is: each point
    on a triangle of the MediaPipe vertex nearest that iBUG point (the stand-in's template is MediaPipe's face)."""
    from medtalk_data.face.ibug68 import MEDIAPIPE_FOR_IBUG68

    faces = model["f"].astype(np.int64)
    face_idx, bary = [], []
    for i in MEDIAPIPE_FOR_IBUG68[17:]:
        tri = int(np.flatnonzero((faces == i).any(axis=1))[-1])
        b = np.full(3, 0.2)
        b[int(np.flatnonzero(faces[tri] == i)[0])] = 0.6
        face_idx.append(tri)
        bary.append(b)
    payload = {"lmk_face_idx": np.asarray(face_idx, dtype=np.uint32), "lmk_b_coords": np.asarray(bary)}
    path.write_bytes(pickle.dumps(payload, protocol=2))


def _posed(standin: StandIn, truth: Truth) -> tuple[object, np.ndarray]:
    """The stand-in's model and its (T, V, 3) vertices posed by ``truth``, metres, FLAME's frame."""
    import torch

    from medtalk_data.face.flame.layer import FlameLayer
    from medtalk_data.face.flame.model_file import load_flame_model

    model = load_flame_model(standin.pkl)
    layer = FlameLayer(model, len(truth.shape), truth.expression.shape[1]).double()
    left, right = model.eye_joints()
    pose = np.zeros((len(truth.jaw), 15))
    pose[:, 0:3], pose[:, 6:9] = truth.rotation, truth.jaw
    pose[:, 3 * left : 3 * left + 3], pose[:, 3 * right : 3 * right + 3] = truth.eyes[:, :3], truth.eyes[:, 3:]
    with torch.no_grad():
        verts = layer(torch.tensor(truth.shape), torch.tensor(truth.expression), torch.tensor(pose)).numpy()
    return model, verts


def _to_image(points: np.ndarray, truth: Truth, noise_mm: float, rng: np.random.Generator) -> np.ndarray:
    """FLAME-frame points (T, K, 3) → weak-perspective image units (picture heights), with noise."""
    cam = points * np.array([1.0, -1.0, -1.0])  # FLAME → camera
    image = truth.scale[:, None, None] * cam
    image[..., :2] += truth.shift[:, None]
    return image + rng.normal(size=image.shape) * noise_mm / 1000.0 * truth.scale[:, None, None]


def render_ibug68(
    standin: StandIn, ibug_embedding: Path, truth: Truth, aspect: float, noise_mm: float, rng: np.random.Generator
) -> np.ndarray:
    """(T, 68, 4) FAN-style points of the stand-in posed by ``truth`` (x / width, y / height, no depth, score 1):
    points 17-67 where the iBUG embedding puts them, the jaw contour at its nearest MediaPipe vertices."""
    from medtalk_data.face.ibug68 import MEDIAPIPE_FOR_IBUG68

    model, verts = _posed(standin, truth)
    with open(ibug_embedding, "rb") as f:
        emb = pickle.load(f)  # the test's own file
    points = verts[:, list(MEDIAPIPE_FOR_IBUG68)]
    corners = model.faces[emb["lmk_face_idx"].astype(np.int64)]
    points[:, 17:] = np.einsum("kc,nkcd->nkd", emb["lmk_b_coords"], verts[:, corners])
    image = _to_image(points, truth, noise_mm, rng)
    out = np.ones((len(image), 68, 4))
    out[..., :2] = image[..., :2]
    out[..., 0] /= aspect
    out[..., 2] = np.nan
    return out.astype(np.float32)


def render_landmarks(
    standin: StandIn, truth: Truth, aspect: float, noise_mm: float, rng: np.random.Generator
) -> np.ndarray:
    """(T, 478, 3) MediaPipe-style landmarks of the stand-in posed by ``truth``: x, y normalised to the
    frame's width/height, z relative depth on x's scale; the 468 mesh points (the embedded ones where
    the embedding puts them) and the two iris centres."""
    model, verts = _posed(standin, truth)
    with np.load(standin.embedding) as emb:
        corners = model.faces[emb["lmk_face_idx"]]
        verts[:, emb["landmark_indices"]] = np.einsum("kc,nkcd->nkd", emb["lmk_b_coords"], verts[:, corners])
    image = _to_image(verts, truth, noise_mm, rng)
    n_face = 468
    ball = (len(verts[0]) - n_face) // 2
    pupils = [n_face, n_face + ball]  # the spheres' front poles: left eye, then right
    out = np.zeros((len(image), 478, 3))
    out[:, :n_face] = image[:, :n_face]
    out[:, 473] = image[:, pupils[0]]
    out[:, 468] = image[:, pupils[1]]
    out[..., 0] /= aspect
    out[..., 2] /= aspect
    return out.astype(np.float32)
