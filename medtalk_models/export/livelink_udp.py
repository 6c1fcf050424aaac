"""Live Link Face over UDP: an animation played as the packets Epic's iPhone app sends to Unreal.

Packet (all numbers big-endian, as Unreal's network-byte-order serializer writes them; the layout
of the engine's ``AppleARKitLiveLinkSource`` and of the app, packet version 6):

* ``uint8``  version (6)
* ``int32``  length, then that many bytes: the device id (UTF-8)
* ``int32``  length, then the subject name (UTF-8): the Live Link subject Unreal shows
* ``int32``  frame number, ``float32`` sub-frame, ``int32`` / ``int32`` frame rate (numerator,
  denominator): the frame's timecode, counted at that rate from midnight as the app does
* ``uint8``  value count (61), then 61 ``float32``: the 52 ARKit blendshapes in Apple's order
  (``EARFaceBlendShape``, :data:`medtalk_data.rigs.ARKIT52`), then head yaw, pitch, roll and the
  left and right eyes' yaw, pitch, roll.

The player sends one packet per frame at the animation's own rate, paced by a monotonic clock (a
late packet is sent at once, never skipped), and nothing after the last frame: Unreal then keeps
the last pose until the subject times out, as when the app stops.
"""

from __future__ import annotations

import socket
import struct
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

import numpy as np

from medtalk_data.errors import MedtalkError
from medtalk_data.rigs import ARKIT52

from .curves import Curves
from .livelink_csv import LLF_ROTATIONS, ROTATION_KEYS

PACKET_VERSION = 6
N_VALUES = len(ARKIT52) + len(LLF_ROTATIONS)  # 61
DEFAULT_PORT = 11111  # the app's and Unreal's default
_VALUES = struct.Struct(f">B{N_VALUES}f")
_TIME = struct.Struct(">ifii")


@dataclass(frozen=True)
class LiveLinkFrame:
    device_id: str
    subject: str
    frame_number: int
    subframe: float
    rate: Fraction
    values: np.ndarray  # (61,) float32 in the packet's order

    @property
    def seconds(self) -> float:
        return (self.frame_number + self.subframe) / float(self.rate)


def encode(frame: LiveLinkFrame) -> bytes:
    device, subject = frame.device_id.encode("utf-8"), frame.subject.encode("utf-8")
    values = np.asarray(frame.values, dtype=np.float32)
    if values.shape != (N_VALUES,):
        raise MedtalkError(f"a Live Link Face packet holds {N_VALUES} values, got {values.shape}")
    return b"".join(
        (
            struct.pack(">B", PACKET_VERSION),
            struct.pack(">i", len(device)) + device,
            struct.pack(">i", len(subject)) + subject,
            _TIME.pack(frame.frame_number, frame.subframe, frame.rate.numerator, frame.rate.denominator),
            _VALUES.pack(N_VALUES, *values.tolist()),
        )
    )


def decode(packet: bytes) -> LiveLinkFrame:
    """The inverse of :func:`encode`; MedtalkError for a packet of another shape."""
    try:
        (version,) = struct.unpack_from(">B", packet, 0)
        if version != PACKET_VERSION:
            raise MedtalkError(f"Live Link Face packet version {version}, expected {PACKET_VERSION}")
        at = 1
        texts = []
        for _ in range(2):
            (n,) = struct.unpack_from(">i", packet, at)
            texts.append(packet[at + 4 : at + 4 + n].decode("utf-8"))
            at += 4 + n
        frame_number, subframe, num, den = _TIME.unpack_from(packet, at)
        at += _TIME.size
        count, *values = _VALUES.unpack_from(packet, at)
    except (struct.error, UnicodeDecodeError) as err:
        raise MedtalkError(f"not a Live Link Face packet ({err})") from err
    if count != N_VALUES or at + _VALUES.size != len(packet):
        raise MedtalkError(f"Live Link Face packet with {count} values and {len(packet)} bytes")
    return LiveLinkFrame(texts[0], texts[1], frame_number, subframe, Fraction(num, den), np.asarray(values, np.float32))


def frame_values(curves: Curves, rotations: np.ndarray | None = None) -> np.ndarray:
    """(T, 61) packet values: the ARKit channels by name (absent ones 0), then the rotations: those
    given, else the head and eye rotations a Live Link Face CSV carried (``curves.meta``), else 0."""
    arkit = curves.select(ARKIT52).values
    rot = _meta_rotations(curves) if rotations is None else rotations
    if rot.shape != (curves.n_frames, len(LLF_ROTATIONS)):
        raise MedtalkError(f"rotations must be ({curves.n_frames}, {len(LLF_ROTATIONS)}), got {rot.shape}")
    return np.concatenate([arkit, rot.astype(np.float32)], axis=1)


def _meta_rotations(curves: Curves) -> np.ndarray:
    n = curves.n_frames
    parts = [curves.meta.get(key) for key in ROTATION_KEYS]
    return np.concatenate([np.zeros((n, 3)) if p is None else np.asarray(p) for p in parts], axis=1).astype(np.float32)


def timecode_rate(fps: float) -> Fraction:
    """The frame rate as the packet states it: 30/1, 30000/1001 for 29.97…"""
    return Fraction(fps).limit_denominator(1001)


def play(
    curves: Curves,
    address: tuple[str, int],
    *,
    subject: str = "medtalk",
    device_id: str | None = None,
    rotations: np.ndarray | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_frame: Callable[[int], None] | None = None,
) -> int:
    """Send every frame of ``curves`` to ``address`` in real time; returns the number of packets sent."""
    values = frame_values(curves, rotations)
    rate = timecode_rate(curves.fps)
    device = device_id or f"medtalk-{uuid.uuid4()}"
    now = datetime.now()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    first = int((now - midnight).total_seconds() * float(rate))  # timecode of the first frame, as the app
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        start = clock()
        for k in range(len(values)):
            due = start + k / curves.fps
            wait = due - clock()
            if wait > 0:
                sleep(wait)
            packet = encode(LiveLinkFrame(device, subject, first + k, 0.0, rate, values[k]))
            try:
                sock.sendto(packet, address)
            except OSError as err:
                raise MedtalkError(f"cannot send to {address[0]}:{address[1]} ({err.strerror or err})") from err
            if on_frame is not None:
                on_frame(k)
    return len(values)


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``HOST``, port 11111; ``[v6]:PORT``) → (host, port); MedtalkError naming the form."""
    host, sep, port = text.rpartition(":")
    if not sep or "]" in port:
        host, port = text, str(DEFAULT_PORT)
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise MedtalkError(f"--live-link {text!r}: give HOST:PORT, e.g. 192.168.1.20:11111")
    return host, int(port)
