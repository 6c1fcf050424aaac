"""The 68 iBUG (Multi-PIE) face points as their nearest MediaPipe mesh points.

FAN, DECA and FLAME's static embedding speak the 68-point iBUG scheme; MediaPipe's 478-point mesh
has a point close to each of them (an approximate, widely used correspondence: the jaw contour of
iBUG follows the visible outline, MediaPipe's points sit on the mesh near it). Used where the
MediaPipe tracker has to stand in for a 68-point face: the box FAN crops, and checking a 68-point
FLAME embedding against MediaPipe's canonical face.
"""

from __future__ import annotations

MEDIAPIPE_FOR_IBUG68 = (
    # 0-16 jaw contour, from the subject's right ear to the left
    127, 234, 93, 132, 58, 136, 150, 176, 152, 400, 379, 365, 288, 361, 323, 454, 356,
    # 17-21 right brow, 22-26 left brow
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    # 27-30 nose bridge, 31-35 nostrils
    168, 197, 5, 4, 75, 97, 2, 326, 305,
    # 36-41 right eye, 42-47 left eye (outer corner first, clockwise in the image)
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    # 48-59 outer lips, 60-67 inner lips
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181, 78, 82, 13, 312, 308, 317, 14, 87,
)  # fmt: skip
N_IBUG = 68
assert len(MEDIAPIPE_FOR_IBUG68) == N_IBUG
