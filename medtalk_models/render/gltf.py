"""An animation as one glTF 2.0 binary (``.glb``) that Blender, Unreal, Unity and web viewers open.

The MediaPipe canonical face mesh (metres, +Y up, +Z towards the viewer, as glTF wants), one morph
target per ARKit blendshape (the fitted basis' displacements; target names in ``mesh.extras.
targetNames``, the convention Blender's and three.js' importers read; ``tongueOut``, which the basis
cannot fit, is a target that moves nothing), and the curves as a linear ``weights`` animation keyed
at every frame. Optional head rotation (pitch, yaw, roll in degrees) becomes the node's rotation
track. The frame rate is in ``asset.extras.fps`` (glTF itself keys seconds). Built with pygltflib.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medtalk_data.errors import MedtalkError
from medtalk_data.face.canonical_mesh import CanonicalMesh
from medtalk_data.io.files import atomic_path, display_path

from ..export.curves import Curves
from .basis import BlendshapeBasis
from .morph_targets import arkit_targets, arkit_weights, head_quaternions

CM = 0.01  # the mesh and basis are in centimetres; glTF in metres
_FLOAT, _USHORT = 5126, 5123
_ARRAY, _ELEMENTS = 34962, 34963


def write_glb(
    path: Path,
    curves: Curves,
    *,
    basis: BlendshapeBasis | None = None,
    mesh: CanonicalMesh | None = None,
    head_rotation_deg: np.ndarray | None = None,
) -> Path:
    """Write ``path`` (atomically); ``curves`` are read by ARKit name (absent ones stay 0)."""
    import pygltflib as g

    targets = arkit_targets(basis, mesh)
    weights = arkit_weights(curves, "glTF")
    deltas = targets.deltas * CM
    positions = targets.neutral * CM
    times = (np.arange(len(weights)) / curves.fps).astype(np.float32)

    blob = bytearray()
    views: list[g.BufferView] = []
    accessors: list[g.Accessor] = []

    def add(array: np.ndarray, kind: str, component: int, target: int | None = None, bounds: bool = False) -> int:
        data = np.ascontiguousarray(array).tobytes()
        while len(blob) % 4:
            blob.append(0)
        views.append(g.BufferView(buffer=0, byteOffset=len(blob), byteLength=len(data), target=target))
        blob.extend(data)
        flat = array.reshape(len(array), -1)
        extra = {"min": flat.min(axis=0).tolist(), "max": flat.max(axis=0).tolist()} if bounds else {}
        accessors.append(
            g.Accessor(bufferView=len(views) - 1, componentType=component, count=len(array), type=kind, **extra)
        )
        return len(accessors) - 1

    position = add(positions, g.VEC3, _FLOAT, _ARRAY, bounds=True)
    indices = add(targets.triangles.astype(np.uint16).reshape(-1), g.SCALAR, _USHORT, _ELEMENTS)
    shapes = [g.Attributes(POSITION=add(d, g.VEC3, _FLOAT, _ARRAY, bounds=True)) for d in deltas]
    primitive = g.Primitive(attributes=g.Attributes(POSITION=position), indices=indices, targets=shapes)
    face = g.Mesh(name="face", primitives=[primitive], weights=[0.0] * len(targets.names),
                  extras={"targetNames": list(targets.names)})  # fmt: skip
    key_times = add(times, g.SCALAR, _FLOAT, bounds=True)
    samplers = [g.AnimationSampler(input=key_times, output=add(weights.reshape(-1), g.SCALAR, _FLOAT))]
    channels = [g.AnimationChannel(sampler=0, target=g.AnimationChannelTarget(node=0, path="weights"))]
    if head_rotation_deg is not None:
        quaternions = head_quaternions(head_rotation_deg, len(weights))  # (x, y, z, w), glTF's order
        samplers.append(g.AnimationSampler(input=key_times, output=add(quaternions, g.VEC4, _FLOAT)))
        channels.append(g.AnimationChannel(sampler=1, target=g.AnimationChannelTarget(node=0, path="rotation")))
    gltf = g.GLTF2(
        asset=g.Asset(version="2.0", generator="medtalk", extras={"fps": curves.fps, "frames": len(weights)}),
        scene=0,
        scenes=[g.Scene(nodes=[0])],
        nodes=[g.Node(name="face", mesh=0)],
        meshes=[face],
        accessors=accessors,
        bufferViews=views,
        buffers=[g.Buffer(byteLength=len(blob))],
        animations=[g.Animation(name="medtalk", samplers=samplers, channels=channels)],
    )
    gltf.set_binary_blob(bytes(blob))
    with atomic_path(Path(path)) as tmp:
        gltf.save_binary(str(tmp))
    return Path(path)


def read_glb(path: Path) -> Curves:
    """The morph-target weights of a ``.glb`` written by :func:`write_glb`, as curves named by target."""
    import pygltflib as g

    try:
        gltf = g.GLTF2().load_binary(str(path))
        blob = gltf.binary_blob()
        face = gltf.meshes[0]
        names = list((face.extras or {})["targetNames"])
        sampler = next(
            gltf.animations[0].samplers[c.sampler] for c in gltf.animations[0].channels if c.target.path == "weights"
        )
    except (OSError, ValueError, KeyError, IndexError, StopIteration, TypeError) as err:
        raise MedtalkError(f"{display_path(path)}: not a medtalk glTF animation ({err})") from err

    def read(index: int) -> np.ndarray:
        accessor = gltf.accessors[index]
        view = gltf.bufferViews[accessor.bufferView]
        start = view.byteOffset + (accessor.byteOffset or 0)
        return np.frombuffer(blob, np.float32, count=accessor.count, offset=start)

    times = read(sampler.input)
    values = read(sampler.output).reshape(len(times), len(names))
    fps = (gltf.asset.extras or {}).get("fps") or (1.0 / float(np.median(np.diff(times))) if len(times) > 1 else 30.0)
    return Curves(values.copy(), names, float(fps))
