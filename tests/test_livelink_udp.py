"""Live Link Face UDP playback, received on the loopback address and decoded back into the curves."""

from __future__ import annotations

import socket
import struct
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from medtalk_cli.models import cli
from medtalk_data.errors import MedtalkError
from medtalk_data.rigs import ARKIT52
from medtalk_models.export.curves import Curves
from medtalk_models.export.livelink_csv import write_livelink_csv
from medtalk_models.export.livelink_udp import LiveLinkFrame, decode, encode, parse_address, play


class Receiver:
    """A UDP socket on 127.0.0.1 that records every packet and when it came, until ``quiet_s`` of silence."""

    def __init__(self, quiet_s: float = 1.0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(quiet_s)
        self.address = self.sock.getsockname()
        self.packets: list[tuple[float, bytes]] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                if self.packets:
                    return
                continue
            self.packets.append((time.monotonic(), data))

    def frames(self) -> list[tuple[float, LiveLinkFrame]]:
        self.thread.join(timeout=30)
        self.sock.close()
        return [(t, decode(p)) for t, p in self.packets]


def _curves(n: int = 45, fps: float = 30.0) -> Curves:
    t = np.arange(n)[:, None] / fps
    phase = np.arange(len(ARKIT52))[None, :]
    values = (0.5 + 0.5 * np.sin(2 * np.pi * 1.3 * t + phase)).astype(np.float32)
    return Curves(values, list(ARKIT52), fps)


def test_every_frame_arrives_in_order_on_time_and_nothing_after_the_last() -> None:
    curves = _curves()
    receiver = Receiver()
    sent = play(curves, receiver.address, subject="Ada", device_id="test-device")
    got = receiver.frames()
    assert sent == len(got) == curves.n_frames  # end of stream: not one packet more
    frames = [f for _, f in got]
    assert [f.frame_number - frames[0].frame_number for f in frames] == list(range(curves.n_frames))
    assert {(f.subject, f.device_id, f.rate) for f in frames} == {("Ada", "test-device", 30)}
    values = np.stack([f.values for f in frames])
    np.testing.assert_array_equal(values[:, :52], curves.values)  # float32 both ways: exact
    assert not values[:, 52:].any()  # no rotations given: zero
    arrival = np.array([t for t, _ in got]) - got[0][0]
    assert np.abs(arrival - np.arange(curves.n_frames) / curves.fps).max() < 1 / curves.fps  # within one frame


def test_packet_layout_is_the_apps() -> None:
    """Big-endian, version 6, length-prefixed ids, frame time, then 61 floats: pinned byte by byte."""
    values = np.linspace(0, 1, 61, dtype=np.float32)
    packet = encode(LiveLinkFrame("dev", "Subject", 1234, 0.5, Fraction(30000, 1001), values))
    assert packet[0] == 6 and struct.unpack(">i", packet[1:5]) == (3,) and packet[5:8] == b"dev"
    assert struct.unpack(">i", packet[8:12]) == (7,) and packet[12:19] == b"Subject"
    assert struct.unpack(">ifii", packet[19:35]) == (1234, 0.5, 30000, 1001)
    assert packet[35] == 61 and np.array_equal(struct.unpack(">61f", packet[36:]), values) and len(packet) == 36 + 244
    frame = decode(packet)
    assert frame.frame_number == 1234 and frame.seconds == pytest.approx(1234.5 * 1001 / 30000)
    with pytest.raises(MedtalkError, match="version 5"):
        decode(b"\x05" + packet[1:])
    with pytest.raises(MedtalkError, match="not a Live Link Face packet"):
        decode(packet[:30])
    with pytest.raises(MedtalkError, match="61 values"):
        encode(LiveLinkFrame("d", "s", 0, 0.0, Fraction(30), values[:52]))


def test_cli_plays_a_live_link_csv_with_its_head_rotation(tmp_path: Path) -> None:
    curves = _curves(n=20, fps=30.0)
    head = np.stack([np.linspace(-0.2, 0.2, 20)] * 3, axis=1).astype(np.float32)
    csv = write_livelink_csv(tmp_path / "take.livelink.csv", curves, head_rotation=head)
    receiver = Receiver()
    host, port = receiver.address
    result = CliRunner().invoke(cli, ["play", str(csv), "--live-link", f"{host}:{port}", "--subject", "Ada"])
    assert result.exit_code == 0 and "sent 20 packets" in result.output, result.output
    frames = [f for _, f in receiver.frames()]
    assert len(frames) == 20 and frames[0].rate == 30
    rotations = np.stack([f.values[52:] for f in frames])
    np.testing.assert_allclose(rotations[:, :3], head, atol=1e-6)  # head yaw, pitch, roll as the CSV holds them
    np.testing.assert_allclose(np.stack([f.values[:52] for f in frames]), curves.values, atol=1e-6)


def test_bad_addresses_are_named() -> None:
    assert parse_address("10.0.0.5:11111") == ("10.0.0.5", 11111)
    assert parse_address("studio-pc") == ("studio-pc", 11111)
    assert parse_address("[::1]:9000") == ("::1", 9000)
    for bad in ("host:0", "host:99999", ":11111", "host:port"):
        with pytest.raises(MedtalkError, match="HOST:PORT"):
            parse_address(bad)
    result = CliRunner().invoke(cli, ["play", __file__, "--live-link", "host:port"])
    assert result.exit_code == 2 and "HOST:PORT" in result.output
