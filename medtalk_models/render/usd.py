"""An animation as one USD file (``.usd``, binary crate) that Blender, Maya, Houdini, Omniverse and usdview open.

UsdSkel's own model of blend-shape animation: a ``SkelRoot`` holding the MediaPipe canonical face
mesh (centimetres, ``metersPerUnit`` 0.01, +Y up) with one ``BlendShape`` per ARKit name (the fitted
basis' displacements, the same shapes as the glTF export), bound to a one-joint ``Skeleton`` whose
``SkelAnimation`` carries the curves as ``blendShapeWeights`` sampled at every frame — the time
codes are the animation's frames (``timeCodesPerSecond`` = its fps). An optional head rotation
(pitch, yaw, roll in degrees) turns the joint. Where the speech is written beside the file, a
``UsdMedia.SpatialAudio`` prim points at it (relative path, starting at frame 0). Built with
Pixar's ``usd-core`` (``pip install 'medtalk[usd]'``), imported lazily.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medtalk_data.errors import MedtalkError
from medtalk_data.io.files import atomic_path, display_path

from ..export.curves import Curves
from .basis import BlendshapeBasis
from .morph_targets import arkit_targets, arkit_weights, head_quaternions

ROOT, SKELETON, MESH, AUDIO = "/Face", "/Face/Skeleton", "/Face/Mesh", "/Face/Speech"
ANIMATION = "/Face/Skeleton/Animation"
JOINT = "head"


def _pxr():
    try:
        from pxr import Gf, Sdf, Usd, UsdGeom, UsdMedia, UsdSkel, Vt
    except ImportError as err:
        raise MedtalkError(f"--format usd needs Pixar's USD library: pip install 'medtalk[usd]' ({err})") from err
    return Gf, Sdf, Usd, UsdGeom, UsdMedia, UsdSkel, Vt


def write_usd(
    path: Path,
    curves: Curves,
    *,
    basis: BlendshapeBasis | None = None,
    head_rotation_deg: np.ndarray | None = None,
    audio: Path | None = None,
) -> Path:
    """Write ``path`` (atomically); ``audio``: a sound file the stage should play, referenced relative to ``path``."""
    Gf, Sdf, Usd, UsdGeom, UsdMedia, UsdSkel, Vt = _pxr()
    path = Path(path)
    targets = arkit_targets(basis)
    weights = arkit_weights(curves, "USD")
    n_frames = len(weights)

    stage = Usd.Stage.CreateInMemory()
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
    UsdGeom.SetStageMetersPerUnit(stage, 0.01)
    stage.SetTimeCodesPerSecond(curves.fps)
    stage.SetFramesPerSecond(curves.fps)
    stage.SetStartTimeCode(0)
    stage.SetEndTimeCode(n_frames - 1)
    root = UsdSkel.Root.Define(stage, ROOT)
    stage.SetDefaultPrim(root.GetPrim())
    stage.GetRootLayer().customLayerData = {"generator": "medtalk", "fps": float(curves.fps), "frames": n_frames}

    skeleton = UsdSkel.Skeleton.Define(stage, SKELETON)
    skeleton.CreateJointsAttr([JOINT])
    skeleton.CreateBindTransformsAttr([Gf.Matrix4d(1)])
    skeleton.CreateRestTransformsAttr([Gf.Matrix4d(1)])
    animation = UsdSkel.Animation.Define(stage, ANIMATION)
    animation.CreateJointsAttr([JOINT])
    animation.CreateBlendShapesAttr(list(targets.names))
    animation.CreateTranslationsAttr([Gf.Vec3f(0, 0, 0)])
    animation.CreateScalesAttr([Gf.Vec3h(1, 1, 1)])
    rotations = animation.CreateRotationsAttr()
    if head_rotation_deg is None:
        rotations.Set([Gf.Quatf(1, 0, 0, 0)])
    else:
        for frame, (x, y, z, w) in enumerate(head_quaternions(head_rotation_deg, n_frames).tolist()):
            rotations.Set([Gf.Quatf(w, x, y, z)], Usd.TimeCode(frame))
    weights_attr = animation.CreateBlendShapeWeightsAttr()
    for frame in range(n_frames):
        weights_attr.Set(Vt.FloatArray.FromNumpy(weights[frame]), Usd.TimeCode(frame))
    UsdSkel.BindingAPI.Apply(skeleton.GetPrim()).CreateAnimationSourceRel().SetTargets([animation.GetPath()])

    mesh = UsdGeom.Mesh.Define(stage, MESH)
    mesh.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(targets.neutral))
    mesh.CreateFaceVertexCountsAttr(Vt.IntArray([3] * len(targets.triangles)))
    mesh.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(targets.triangles.astype(np.int32).reshape(-1)))
    mesh.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
    reach = targets.neutral[None] + np.abs(targets.deltas).max(axis=0)[None] * np.array([[[-1.0]], [[1.0]]])
    mesh.CreateExtentAttr([Gf.Vec3f(*reach[0].min(axis=0).tolist()), Gf.Vec3f(*reach[1].max(axis=0).tolist())])
    st = UsdGeom.PrimvarsAPI(mesh).CreatePrimvar("st", Sdf.ValueTypeNames.TexCoord2fArray, UsdGeom.Tokens.vertex)
    st.Set(Vt.Vec2fArray.FromNumpy(targets.uv.astype(np.float32)))
    binding = UsdSkel.BindingAPI.Apply(mesh.GetPrim())
    binding.CreateSkeletonRel().SetTargets([skeleton.GetPath()])
    binding.CreateJointIndicesPrimvar(True, 1).Set(Vt.IntArray([0]))
    binding.CreateJointWeightsPrimvar(True, 1).Set(Vt.FloatArray([1.0]))
    binding.CreateGeomBindTransformAttr(Gf.Matrix4d(1))
    binding.CreateBlendShapesAttr(list(targets.names))
    shape_paths = []
    for name, delta in zip(targets.names, targets.deltas, strict=True):
        shape = UsdSkel.BlendShape.Define(stage, mesh.GetPath().AppendChild(name))
        shape.CreateOffsetsAttr(Vt.Vec3fArray.FromNumpy(delta))
        shape_paths.append(shape.GetPath())
    binding.CreateBlendShapeTargetsRel().SetTargets(shape_paths)

    if audio is not None:
        speech = UsdMedia.SpatialAudio.Define(stage, AUDIO)
        speech.CreateFilePathAttr(Sdf.AssetPath(f"./{Path(audio).name}"))
        speech.CreateAuralModeAttr(UsdMedia.Tokens.nonSpatial)
        speech.CreatePlaybackModeAttr(UsdMedia.Tokens.onceFromStart)  # startTime's fallback: frame 0
    with atomic_path(path, keep_suffix=True) as tmp:
        if not stage.GetRootLayer().Export(str(tmp)):
            raise MedtalkError(f"{display_path(path)}: USD could not write the file")
    return path


def read_usd(path: Path) -> Curves:
    """The blend-shape weights of a ``.usd`` written by :func:`write_usd`, as curves named by shape."""
    _Gf, _Sdf, Usd, _UsdGeom, _UsdMedia, UsdSkel, _Vt = _pxr()
    from pxr import Tf

    try:
        stage = Usd.Stage.Open(str(path)) if Path(path).is_file() else None
    except Tf.ErrorException as err:
        raise MedtalkError(f"{display_path(path)}: not a medtalk USD animation (USD cannot open it)") from err
    animation = UsdSkel.Animation(stage.GetPrimAtPath(ANIMATION)) if stage else None
    if not animation:
        raise MedtalkError(f"{display_path(path)}: not a medtalk USD animation (no {ANIMATION})")
    names = list(animation.GetBlendShapesAttr().Get())
    attr = animation.GetBlendShapeWeightsAttr()
    frames = attr.GetTimeSamples()
    values = np.array([np.asarray(attr.Get(Usd.TimeCode(t)), np.float32) for t in frames], np.float32)
    return Curves(values.reshape(len(frames), len(names)), names, float(stage.GetTimeCodesPerSecond()))
