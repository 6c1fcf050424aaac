"""Curve export: every format round-trips by channel name, and the Live Link Face CSV matches the app's files."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from medtalk_data.errors import MedtalkError
from medtalk_data.rigs import ARKIT52, MEDIAPIPE_BLENDSHAPES
from medtalk_models.export import (
    FORMATS,
    LLF_BLENDSHAPES,
    Curves,
    format_of,
    formats_for,
    read_any,
    read_arkit_csv,
    read_livelink_csv,
    read_medtalk_txt,
    read_npz,
    unique_names,
    write_all,
    write_arkit_csv,
    write_livelink_csv,
    write_medtalk_txt,
    write_npz,
)

RNG = np.random.default_rng(7)


def arkit_curves(n: int = 90, fps: float = 60.0) -> Curves:
    return Curves(RNG.random((n, 52), dtype=np.float32), list(ARKIT52), fps)


def mediapipe_curves(n: int = 40, fps: float = 25.0) -> Curves:
    return Curves(RNG.random((n, 52), dtype=np.float32), list(MEDIAPIPE_BLENDSHAPES), fps)


def metahuman_names() -> list[str]:
    """174 controller names with the official names file's two repeated tongue names."""
    names = [f"CTRL_L_ctrl{i:03d}-translateY" for i in range(170)]
    tongue = ["CTRL_C_tongue_tip-translateX", "CTRL_C_tongue_tip-translateY"]
    return [*names[:25], *tongue, *tongue, *names[25:]]


def metahuman_curves(n: int = 30) -> Curves:
    return Curves(RNG.normal(0, 0.3, (n, 174)).astype(np.float32), unique_names(metahuman_names()), 60.0)


def same_by_name(a: Curves, b: Curves, atol: float = 1e-6) -> None:
    assert a.fps == pytest.approx(b.fps)
    assert set(a.names) == set(b.names)
    np.testing.assert_allclose(a.select(b.names).values, b.values, atol=atol)


# -- Curves ----------------------------------------------------------------------------------------


def test_curves_validate_shape_names_and_fps() -> None:
    with pytest.raises(MedtalkError, match="repeated channel names"):
        Curves(np.zeros((2, 2)), ["a", "a"], 30)
    with pytest.raises(MedtalkError, match="2 curve channels but 3"):
        Curves(np.zeros((2, 2)), ["a", "b", "c"], 30)
    with pytest.raises(MedtalkError, match="fps"):
        Curves(np.zeros((2, 2)), ["a", "b"], 0)
    c = Curves(np.zeros((120, 2)), ["a", "b"], 60)
    assert c.values.dtype == np.float32 and c.duration_s == pytest.approx(2.0)


def test_resample_30_to_60_doubles_frames_linearly_and_back() -> None:
    c = Curves(RNG.random((31, 3), dtype=np.float32), ["a", "b", "c"], 30.0, meta={"head_rotation": np.ones((31, 3))})
    up = c.resample(60.0)
    assert up.n_frames == 61 and up.fps == 60.0  # floor(30 * 60 / 30) + 1: the same 1 s span
    np.testing.assert_allclose(up.values[0::2], c.values, atol=1e-7)
    np.testing.assert_allclose(up.values[1::2], (c.values[:-1] + c.values[1:]) / 2, atol=1e-6)
    assert up.meta["head_rotation"].shape == (61, 3)  # per-frame side data follows the curves
    down = up.resample(30.0)
    assert down.n_frames == 31
    np.testing.assert_allclose(down.values, c.values, atol=1e-6)
    ramp = Curves(np.arange(25, dtype=np.float32)[:, None], ["x"], 25.0).resample(60.0)
    assert ramp.n_frames == 58  # floor(24 * 60 / 25) + 1
    np.testing.assert_allclose(ramp.values[:, 0], np.arange(58) * 25 / 60, atol=1e-5)


def test_select_reorders_by_name_and_reports_what_it_filled() -> None:
    c = mediapipe_curves()
    out = c.select(list(ARKIT52), fill=0.0)
    assert out.names == list(ARKIT52) and out.missing == ["tongueOut"]
    assert not out.values[:, ARKIT52.index("tongueOut")].any()
    np.testing.assert_array_equal(
        out.values[:, ARKIT52.index("jawLeft")], c.values[:, MEDIAPIPE_BLENDSHAPES.index("jawLeft")]
    )


# -- ARKit CSV -------------------------------------------------------------------------------------


def test_arkit_csv_round_trip(tmp_path: Path) -> None:
    c = arkit_curves(fps=60.0)
    path = write_arkit_csv(tmp_path / "a.arkit.csv", c)
    back = read_arkit_csv(path)
    assert back.names == list(ARKIT52) and back.fps == 60.0 and back.n_frames == c.n_frames
    same_by_name(back, c)
    # 6-decimal times of a 29.97 fps clip still give 29.97 back
    ntsc = read_arkit_csv(write_arkit_csv(tmp_path / "n.arkit.csv", arkit_curves(n=300, fps=29.97)))
    assert ntsc.fps == 29.97 and "filled_frames" not in ntsc.meta


def test_mediapipe_curves_become_apple_order_without_neutral(tmp_path: Path) -> None:
    c = mediapipe_curves()
    path = write_arkit_csv(tmp_path / "mp.arkit.csv", c)
    header = path.read_text().splitlines()[0].split(",")
    assert header == ["time_s", *ARKIT52] and "_neutral" not in header
    table = np.loadtxt(path, delimiter=",", skiprows=1)
    assert not table[:, header.index("tongueOut")].any()
    np.testing.assert_allclose(
        table[:, header.index("jawOpen")], c.values[:, MEDIAPIPE_BLENDSHAPES.index("jawOpen")], atol=1e-6
    )
    np.testing.assert_allclose(table[:, 0], np.arange(c.n_frames) / 25.0, atol=1e-6)
    back = read_arkit_csv(path)
    assert back.fps == 25.0
    same_by_name(back, c.select(list(ARKIT52)))


def test_shuffled_csv_columns_read_the_same_by_name(tmp_path: Path) -> None:
    c = arkit_curves(n=20, fps=30.0)
    path = write_arkit_csv(tmp_path / "a.arkit.csv", c)
    rows = [line.split(",") for line in path.read_text().splitlines()]
    order = [0, *(RNG.permutation(52) + 1)]
    shuffled = tmp_path / "shuffled.arkit.csv"
    shuffled.write_text("\n".join(",".join(row[i] for i in order) for row in rows) + "\n")
    back = read_arkit_csv(shuffled)
    assert back.names != list(ARKIT52)
    same_by_name(back, c)


def test_arkit_csv_rejects_time_going_backwards(tmp_path: Path) -> None:
    path = tmp_path / "bad.arkit.csv"
    path.write_text("time_s,jawOpen\n0.0,0.1\n0.033333,0.2\n0.02,0.3\n")
    with pytest.raises(MedtalkError, match=r"bad\.arkit\.csv: time_s does not increase on line 4"):
        read_arkit_csv(path)
    path.write_text("jawOpen,time_s\n0.1,0.0\n")
    with pytest.raises(MedtalkError, match="first column must be 'time_s'"):
        read_arkit_csv(path)


# -- Live Link Face CSV ----------------------------------------------------------------------------


def test_livelink_header_is_the_apps_exact_header(tmp_path: Path) -> None:
    c = arkit_curves(n=10)
    path = write_livelink_csv(tmp_path / "take.livelink.csv", c)
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    assert lines[0].startswith("Timecode,BlendShapeCount,EyeBlinkLeft,EyeLookDownLeft,")
    assert len(header) == 63 and header[-9:] == [
        "HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
        "RightEyeYaw", "RightEyePitch", "RightEyeRoll",
    ]  # fmt: skip
    # The app's order is Apple's except the two swapped pairs (blendshape positions 15/16 and 21/22).
    assert header[2 + 14 : 2 + 18] == ["JawForward", "JawRight", "JawLeft", "JawOpen"]
    assert header[2 + 20 : 2 + 24] == ["MouthPucker", "MouthRight", "MouthLeft", "MouthSmileLeft"]
    apple = [n[0].upper() + n[1:] for n in ARKIT52]
    swapped = [i for i, (a, b) in enumerate(zip(LLF_BLENDSHAPES, apple, strict=True)) if a != b]
    assert swapped == [15, 16, 21, 22] and sorted(LLF_BLENDSHAPES) == sorted(apple)
    rows = [line.split(",") for line in lines[1:]]
    assert all(len(r) == 63 and r[1] == "61" for r in rows)
    # values land under their own name, not their Apple position
    np.testing.assert_allclose(
        [float(r[header.index("JawLeft")]) for r in rows], c.values[:, ARKIT52.index("jawLeft")], atol=1e-9
    )
    np.testing.assert_allclose(
        [float(r[header.index("MouthRight")]) for r in rows], c.values[:, ARKIT52.index("mouthRight")], atol=1e-9
    )


def test_livelink_timecodes_advance_one_frame_per_row_at_60fps(tmp_path: Path) -> None:
    c = arkit_curves(n=125, fps=60.0)
    path = write_livelink_csv(tmp_path / "t.livelink.csv", c)
    codes = [line.split(",")[0] for line in path.read_text().splitlines()[1:]]
    assert codes[0] == "00:00:00:00.000" and codes[1] == "00:00:00:01.000"
    assert [tc[9:11] for tc in codes[:60]] == [f"{f:02d}" for f in range(60)]
    assert codes[59] == "00:00:00:59.000" and codes[60] == "00:00:01:00.000" and codes[124] == "00:00:02:04.000"
    back = read_livelink_csv(path)
    assert back.fps == 60.0 and back.meta["timecode_fps"] == 60 and back.n_frames == 125
    # a 30 fps clip counts frames at 30 (the app's other rate); a start offset rolls minutes and hours
    codes30 = [
        line.split(",")[0]
        for line in write_livelink_csv(tmp_path / "t30.livelink.csv", arkit_curves(n=35, fps=30.0), start_s=3599.0)
        .read_text()
        .splitlines()[1:]
    ]
    assert codes30[29] == "00:59:59:29.000" and codes30[30] == "01:00:00:00.000"
    assert read_livelink_csv(tmp_path / "t30.livelink.csv").fps == 30.0
    # Under half a second no frame number reaches 30, so the rate is ambiguous: like Epic's importer the
    # reader then assumes 30, and timecode_fps settles it.
    short = write_livelink_csv(tmp_path / "short.livelink.csv", arkit_curves(n=20, fps=60.0))
    assert read_livelink_csv(short).fps == 30.0 and read_livelink_csv(short, timecode_fps=60).fps == 60.0


def test_livelink_round_trip_with_rotations(tmp_path: Path) -> None:
    c = mediapipe_curves(n=70, fps=60.0)
    head = RNG.normal(0, 0.2, (70, 3))
    path = write_livelink_csv(tmp_path / "r.livelink.csv", c, head_rotation=head)
    back = read_livelink_csv(path)
    assert back.names == list(ARKIT52) and back.fps == 60.0
    same_by_name(back, c.select(list(ARKIT52)))
    np.testing.assert_allclose(back.meta["head_rotation"], head, atol=1e-6)
    assert not back.meta["left_eye_rotation"].any()
    with pytest.raises(MedtalkError, match=r"head_rotation must be \(70, 3\)"):
        write_livelink_csv(tmp_path / "x.livelink.csv", c, head_rotation=np.zeros((69, 3)))


def test_livelink_reads_what_the_app_records(tmp_path: Path) -> None:
    """Like real takes: wall-clock start, 60 fps timecode with rows every 2 frames (30 samples/s),
    sub-frame fractions, one dropped frame and one row where tracking was lost (``<timecode>,0``)."""
    header = "Timecode,BlendShapeCount," + ",".join(LLF_BLENDSHAPES) + ",HeadYaw,HeadPitch,HeadRoll,"
    header += "LeftEyeYaw,LeftEyePitch,LeftEyeRoll,RightEyeYaw,RightEyePitch,RightEyeRoll"
    frames = [54.2, 56.2, 58.2, 60.2, 62.2, 64.2, 68.2, 70.2, 72.2]  # 66.2 dropped
    lines = [header]
    for k, f in enumerate(frames):
        sec, ff = divmod(f, 60)
        tc = f"12:27:{47 + int(sec):02d}:{ff:06.3f}"
        if k == 4:
            lines.append(f"{tc},0")  # face lost
            continue
        values = [0.0] * 61
        values[LLF_BLENDSHAPES.index("JawOpen")] = f / 100  # linear in time
        values[LLF_BLENDSHAPES.index("MouthLeft")] = 0.5
        values[52 + 3] = -0.25  # LeftEyeYaw
        lines.append(f"{tc},61," + ",".join(f"{v:.10f}" for v in values))
    path = tmp_path / "Slate_1_iPhone.csv"
    path.write_text("\n".join(lines) + "\n")
    assert format_of(path) == "livelink"
    c = read_any(path)
    assert c.fps == 30.0 and c.meta["timecode_fps"] == 60 and c.meta["start_timecode"] == "12:27:47:54.200"
    assert c.n_frames == 10 and c.meta["untracked_rows"] == 1 and c.meta["filled_frames"] == 2
    np.testing.assert_allclose(c.values[:, ARKIT52.index("jawOpen")], (54.2 + 2 * np.arange(10)) / 100, atol=1e-6)
    assert (c.values[:, ARKIT52.index("mouthLeft")] == 0.5).all() and not c.values[:, ARKIT52.index("jawLeft")].any()
    assert (c.meta["left_eye_rotation"][:, 0] == -0.25).all()


def test_livelink_refuses_a_metahuman_rig_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(MedtalkError, match="not ARKit names"):
        write_livelink_csv(tmp_path / "m.livelink.csv", metahuman_curves())
    path = write_livelink_csv(tmp_path / "t.livelink.csv", arkit_curves(n=70))
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], lines[1], lines[3], lines[2], *lines[4:]]) + "\n")
    with pytest.raises(MedtalkError, match=r"t\.livelink\.csv: line 4: the timecode does not increase"):
        read_livelink_csv(path)
    path.write_text("\n".join([lines[0], "00:00:00:00.000,61,0.5"]) + "\n")
    with pytest.raises(MedtalkError, match="line 2 has 3 fields, the header 63"):
        read_livelink_csv(path)
    path.write_text("time,BlendShapeCount\n")
    with pytest.raises(MedtalkError, match="not a Live Link Face CSV"):
        read_livelink_csv(path)


# -- npz -------------------------------------------------------------------------------------------


def test_npz_round_trip_any_rig(tmp_path: Path) -> None:
    for c in (arkit_curves(), metahuman_curves(), Curves(np.ones((3, 2)), ["x", "y"], 24.0)):
        back = read_npz(write_npz(tmp_path / "c.npz", c))
        assert back.names == c.names and back.fps == c.fps
        np.testing.assert_array_equal(back.values, c.values)
    with np.load(tmp_path / "c.npz", allow_pickle=False) as data:
        assert sorted(data.files) == ["curves", "fps", "names", "time_s"] and data["names"].dtype.kind == "U"


def test_npz_with_missing_unknown_or_truncated_content_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, curves=np.zeros((2, 1), np.float32), names=np.array(["a"]))
    with pytest.raises(MedtalkError, match=r"bad\.npz: missing key\(s\) \['fps'\]"):
        read_npz(path)
    np.savez(path, curves=np.zeros((2, 1), np.float32), names=np.array(["a"]), fps=30.0, landmarks=np.zeros(3))
    with pytest.raises(MedtalkError, match=r"unknown key\(s\) \['landmarks'\]"):
        read_npz(path)
    np.savez(path, curves=np.zeros((2, 2), np.float32), names=np.array(["a"]), fps=30.0)
    with pytest.raises(MedtalkError, match="2 channels in 'curves' but 1 'names'"):
        read_npz(path)
    good = write_npz(tmp_path / "good.npz", arkit_curves(n=400))
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(MedtalkError, match=r"bad\.npz: not a readable npz, perhaps truncated"):
        read_npz(path)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("curves.npy", b"not an array")
    with pytest.raises(MedtalkError, match=r"bad\.npz"):
        read_npz(path)


# -- MEDTalk rig txt -------------------------------------------------------------------------------


def test_medtalk_txt_round_trip_in_names_file_order(tmp_path: Path) -> None:
    names = metahuman_names()
    names_file = tmp_path / "metahuman_attr_names.txt"
    names_file.write_text("\n".join(names) + "\n")
    c = metahuman_curves()
    shuffled = c.select(list(np.array(c.names)[RNG.permutation(174)]))
    path = write_medtalk_txt(tmp_path / "clip.txt", shuffled, names=names)  # reordered to the names file
    rows = path.read_text().splitlines()
    assert len(rows) == c.n_frames and all(len(r.split(",")) == 174 for r in rows)
    back = read_medtalk_txt(path, names_file)
    assert back.names == c.names and back.fps == 60.0 and "CTRL_C_tongue_tip-translateX#2" in back.names
    np.testing.assert_allclose(back.values, c.values, atol=1e-6)
    with pytest.raises(MedtalkError, match="names file not found"):
        read_medtalk_txt(path, tmp_path / "nope.txt")
    with pytest.raises(MedtalkError, match="lack"):
        write_medtalk_txt(tmp_path / "x.txt", c, names=[*names[:-1], "CTRL_R_other-translateX"])


def test_real_emoface_rig_file_round_trips(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "emoface"
    c = read_medtalk_txt(folder / "angry_gd04_001_021_rig174.txt", folder / "metahuman_attr_names.txt")
    assert c.values.shape[1] == 174 and formats_for(c) == ["npz", "txt"]
    names = (folder / "metahuman_attr_names.txt").read_text().split()
    out = write_medtalk_txt(tmp_path / "again.txt", c, names=names)
    np.testing.assert_allclose(np.loadtxt(out, delimiter=","), c.values, atol=1e-6)
    same_by_name(read_any(out, names_path=folder / "metahuman_attr_names.txt"), c)


# -- the registry ----------------------------------------------------------------------------------


def test_write_all_writes_each_format_and_reads_it_back(tmp_path: Path) -> None:
    c = arkit_curves(n=70)
    paths = write_all(tmp_path / "out", "clip", c, ["csv", "livelink", "npz"])
    assert [p.name for p in paths] == ["clip.arkit.csv", "clip.livelink.csv", "clip.npz"]
    for p in paths:
        same_by_name(read_any(p), c)
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temp files left
    mh = write_all(tmp_path / "out", "rig", metahuman_curves(), ["txt", "npz"])
    assert [FORMATS[format_of(p)].suffix for p in mh] == [".txt", ".npz"]


def test_write_all_refuses_existing_files_unless_overwrite(tmp_path: Path) -> None:
    c = arkit_curves(n=5)
    write_all(tmp_path, "clip", c, ["npz"])
    before = (tmp_path / "clip.npz").read_bytes()
    with pytest.raises(MedtalkError, match=r"clip\.npz already exists; pass --overwrite"):
        write_all(tmp_path, "clip", arkit_curves(n=6), ["csv", "npz"])
    assert (tmp_path / "clip.npz").read_bytes() == before and not (tmp_path / "clip.arkit.csv").exists()
    write_all(tmp_path, "clip", arkit_curves(n=6), ["csv", "npz"], overwrite=True)
    assert read_npz(tmp_path / "clip.npz").n_frames == 6


def test_formats_only_take_the_rigs_they_hold(tmp_path: Path) -> None:
    with pytest.raises(MedtalkError, match="valid formats for this rig: csv, livelink, npz"):
        write_all(tmp_path, "a", arkit_curves(n=3), ["npz", "txt"])
    with pytest.raises(MedtalkError, match="valid formats for this rig: npz, txt"):
        write_all(tmp_path, "m", metahuman_curves(n=3), ["livelink"])
    with pytest.raises(MedtalkError, match="unknown export format"):
        write_all(tmp_path, "a", arkit_curves(n=3), ["fbx"])
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_read_any_dispatches_on_suffix_and_header(tmp_path: Path) -> None:
    c = arkit_curves(n=8, fps=30.0)
    plain = write_arkit_csv(tmp_path / "plain.csv", c)
    assert format_of(plain) == "csv"
    same_by_name(read_any(plain), c)
    odd = tmp_path / "odd.csv"
    odd.write_text("frame,jawOpen\n0,0.1\n")
    with pytest.raises(MedtalkError, match="neither Live Link Face's"):
        read_any(odd)
    with pytest.raises(MedtalkError, match="unknown curves file type"):
        read_any(tmp_path / "clip.fbx")
