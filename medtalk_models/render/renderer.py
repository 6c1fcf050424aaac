"""Headless OpenGL render of the canonical face mesh with moderngl on an EGL context.

EGL needs no display server, so previews render on servers and in CI (Mesa's llvmpipe on CPU,
or the GPU's driver). The camera is fixed and frames the canonical face (head pose is not
animated: the preview shows expression only, like the curves it is driven by).
"""

from __future__ import annotations

import math
from types import TracebackType
from typing import Any

import numpy as np

from medtalk_data.errors import MedtalkError
from medtalk_data.face.canonical_mesh import CanonicalMesh, load_canonical_mesh

_VERTEX_SHADER = """
#version 330
uniform mat4 mvp;
in vec3 in_pos;
in vec3 in_normal;
out vec3 v_normal;
void main() {
    v_normal = in_normal;
    gl_Position = mvp * vec4(in_pos, 1.0);
}
"""

_FRAGMENT_SHADER = """
#version 330
uniform vec3 light_dir;
uniform vec3 skin;
in vec3 v_normal;
out vec4 colour;
void main() {
    vec3 n = normalize(v_normal);
    if (!gl_FrontFacing) {  // the inside of the mouth and eyes seen through their holes
        colour = vec4(skin * 0.25, 1.0);
        return;
    }
    float diffuse = max(dot(n, light_dir), 0.0);
    vec3 half_vec = normalize(light_dir + vec3(0.0, 0.0, 1.0));
    float specular = pow(max(dot(n, half_vec), 0.0), 24.0) * 0.15;
    colour = vec4(skin * (0.28 + 0.72 * diffuse) + specular, 1.0);
}
"""

SKIN_GREY = (0.74, 0.72, 0.70)
BACKGROUND = (0.12, 0.12, 0.14)
INSTALL_FIX = (
    "install it with `pip install moderngl`; headless rendering also needs EGL "
    "(libEGL with Mesa, e.g. `apt install libegl1 libgl1-mesa-dri`, or a GPU driver's EGL)"
)


def _perspective(fovy_deg: float, aspect: float, near: float, far: float) -> np.ndarray:
    f = 1.0 / math.tan(math.radians(fovy_deg) / 2.0)
    return np.array(
        [
            [f / aspect, 0, 0, 0],
            [0, f, 0, 0],
            [0, 0, (far + near) / (near - far), 2 * far * near / (near - far)],
            [0, 0, -1, 0],
        ],
        dtype=np.float64,
    )


def _camera(aspect: float) -> np.ndarray:
    """A camera 60 cm in front of the canonical face (+z), framing forehead to an open jaw."""
    distance, centre = 60.0, np.array([0.0, -0.8, 2.0])
    view = np.eye(4)
    view[:3, 3] = -(centre + np.array([0.0, 0.0, distance]))  # eye on +z, looking down -z
    half_height = 11.0  # cm at the face: canonical y spans -9.4…8.3, plus room for jawOpen
    fovy = math.degrees(2 * math.atan(half_height / distance))
    return _perspective(fovy, aspect, 10.0, 200.0) @ view


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Area-weighted per-vertex normals (unit length) for smooth shading."""
    v = vertices.astype(np.float32, copy=False)
    a, b, c = v[triangles[:, 0]], v[triangles[:, 1]], v[triangles[:, 2]]
    face = np.cross(b - a, c - a)
    normals = np.zeros_like(v)
    for corner in range(3):
        for axis in range(3):
            normals[:, axis] += np.bincount(triangles[:, corner], weights=face[:, axis], minlength=len(v))
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return normals / np.maximum(length, 1e-8)


class MeshRenderer:
    """Render vertices of ``mesh`` (default: the canonical face's 468) in the canonical head frame (cm) to RGB
    images; use as a context manager or call close()."""

    def __init__(self, size: tuple[int, int] = (256, 256), mesh: CanonicalMesh | None = None, samples: int = 4) -> None:
        try:
            import moderngl
        except ImportError as err:
            raise MedtalkError(f"the mesh preview needs moderngl ({err}); {INSTALL_FIX}") from err
        self.width, self.height = int(size[0]), int(size[1])
        if self.width < 8 or self.height < 8:
            raise ValueError(f"render size {size} is too small")
        self.mesh = mesh or load_canonical_mesh()
        try:
            self.ctx: Any = moderngl.create_standalone_context(backend="egl")
        except Exception as err:  # moderngl raises a bare Exception when EGL or the driver is missing
            raise MedtalkError(f"cannot create a headless OpenGL (EGL) context ({err}); {INSTALL_FIX}") from err
        try:
            self._setup(moderngl, samples)
        except Exception:
            self.ctx.release()
            raise

    def _setup(self, moderngl: Any, samples: int) -> None:
        ctx = self.ctx
        self.program = ctx.program(vertex_shader=_VERTEX_SHADER, fragment_shader=_FRAGMENT_SHADER)
        self.program["mvp"].write(_camera(self.width / self.height).T.astype("f4").tobytes())
        light = np.array([-0.35, 0.45, 0.82])
        self.program["light_dir"].value = tuple(light / np.linalg.norm(light))
        self.program["skin"].value = SKIN_GREY
        n = len(self.mesh.vertices)
        self.positions = ctx.buffer(reserve=n * 12, dynamic=True)
        self.normals = ctx.buffer(reserve=n * 12, dynamic=True)
        index = ctx.buffer(self.mesh.triangles.astype("i4").tobytes())
        self.vao = ctx.vertex_array(
            self.program, [(self.positions, "3f", "in_pos"), (self.normals, "3f", "in_normal")], index_buffer=index
        )
        size = (self.width, self.height)
        samples = min(samples, ctx.max_samples)
        self.msaa = ctx.framebuffer(
            color_attachments=[ctx.renderbuffer(size, 4, samples=samples)],
            depth_attachment=ctx.depth_renderbuffer(size, samples=samples),
        )
        self.resolved = ctx.simple_framebuffer(size, components=4) if samples else self.msaa
        ctx.enable(moderngl.DEPTH_TEST)

    def render(self, vertices: np.ndarray) -> np.ndarray:
        """(V, 3) vertices in cm (canonical head frame) → (H, W, 3) uint8 RGB, top row first."""
        v = np.ascontiguousarray(vertices, dtype=np.float32)
        if v.shape != self.mesh.vertices.shape:
            raise ValueError(f"expected {self.mesh.vertices.shape} vertices, got {v.shape}")
        self.positions.write(v.tobytes())
        self.normals.write(vertex_normals(v, self.mesh.triangles).tobytes())
        self.msaa.use()
        self.msaa.clear(*BACKGROUND, 1.0, depth=1.0)
        self.vao.render()
        if self.resolved is not self.msaa:
            self.ctx.copy_framebuffer(self.resolved, self.msaa)
        raw = self.resolved.read(components=3, alignment=1)
        image = np.frombuffer(raw, dtype=np.uint8).reshape(self.height, self.width, 3)
        return np.ascontiguousarray(image[::-1])

    def project(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) canonical-frame points (cm) → (N, 2) pixel (column, row) in :meth:`render`'s image."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        clip = np.c_[p, np.ones(len(p))] @ _camera(self.width / self.height).T
        ndc = clip[:, :2] / clip[:, 3:4]
        return np.stack([(ndc[:, 0] + 1) / 2 * self.width, (1 - ndc[:, 1]) / 2 * self.height], axis=1)

    def close(self) -> None:
        """Release the GL context (and every object made in it)."""
        ctx, self.ctx = self.ctx, None
        if ctx is not None:
            ctx.release()

    def __enter__(self) -> MeshRenderer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
