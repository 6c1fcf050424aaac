"""Run inside Blender's Python (the bpy wheel): import a medtalk .usd and report what Blender made of it.

    python check_usd.py ANIMATION.usd FRAME [FRAME ...]  → one JSON line on stdout

Reports the mesh, its shape keys, the scene frame range the import set, where the keyframes of
``jawOpen`` fall, every shape key's value and the evaluated (shape keys + skeleton) world-space
vertices at the frames asked for.
"""

import json
import sys

import bpy

path, frames = sys.argv[1], [int(f) for f in sys.argv[2:]]
bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
bpy.ops.wm.usd_import(filepath=path, import_skeletons=True, import_blendshapes=True, set_frame_range=True)
meshes = [o for o in scene.objects if o.type == "MESH"]
face = meshes[0]
blocks = list(face.data.shape_keys.key_blocks)
action = face.data.shape_keys.animation_data.action if face.data.shape_keys.animation_data else None


def fcurves(action):
    """Blender 4.4+ keeps F-curves in layered actions' channel bags; older ones on the action itself."""
    if hasattr(action, "fcurves") and len(action.fcurves):
        return list(action.fcurves)
    found = []
    for layer in getattr(action, "layers", []):
        for strip in layer.strips:
            for bag in strip.channelbags:
                found += list(bag.fcurves)
    return found


jaw = next((f for f in fcurves(action) if f.data_path == 'key_blocks["jawOpen"].value'), None) if action else None
values, vertices = {}, {}
for frame in frames:
    scene.frame_set(frame)
    values[frame] = {b.name: b.value for b in blocks[1:]}
    evaluated = face.evaluated_get(bpy.context.evaluated_depsgraph_get())
    world = evaluated.matrix_world
    vertices[frame] = [list(world @ v.co) for v in evaluated.data.vertices]
print(
    json.dumps(
        {
            "blender": bpy.app.version_string,
            "meshes": len(meshes),
            "vertices": len(face.data.vertices),
            "armatures": len([o for o in scene.objects if o.type == "ARMATURE"]),
            "shape_keys": [b.name for b in blocks],
            "frame_range": [scene.frame_start, scene.frame_end],
            "jaw_keyframes": [p.co[0] for p in jaw.keyframe_points] if jaw else [],
            "values": values,
            "world_vertices": vertices,
        }
    )
)
