"""Run inside Blender's Python (the bpy wheel): import a medtalk .glb and report what Blender made of it.

    python check_glb.py ANIMATION.glb FPS FRAME [FRAME ...]  → one JSON line on stdout

Reports the shape keys, the scene frame rate the keys were laid out at, where the keyframes of
``jawOpen`` fall, and every shape key's value at the frames asked for (as Blender evaluates them).
"""

import json
import sys

import bpy

path, fps, frames = sys.argv[1], float(sys.argv[2]), [int(f) for f in sys.argv[3:]]
bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
scene.render.fps, scene.render.fps_base = round(fps), round(fps) / fps  # the rate the file's extras state
bpy.ops.import_scene.gltf(filepath=path)
meshes = [o for o in scene.objects if o.type == "MESH"]
face = meshes[0]
keys = face.data.shape_keys
blocks = list(keys.key_blocks)
action = keys.animation_data.action if keys.animation_data else None


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
values = {}
for frame in frames:
    scene.frame_set(frame)
    values[frame] = {b.name: b.value for b in blocks[1:]}
print(
    json.dumps(
        {
            "blender": bpy.app.version_string,
            "meshes": len(meshes),
            "vertices": len(face.data.vertices),
            "shape_keys": [b.name for b in blocks],
            "scene_fps": scene.render.fps / scene.render.fps_base,
            "jaw_keyframes": [p.co[0] for p in jaw.keyframe_points] if jaw else [],
            "values": values,
        }
    )
)
