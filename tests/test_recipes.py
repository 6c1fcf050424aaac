"""Dataset recipes on real file-name lists, the canonical emotion mapping, and the labels CSV."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from medtalk_data.emotions import CANONICAL_EMOTIONS, canonical_emotion, emotion_id, emotion_word_in_name
from medtalk_data.errors import ConfigError
from medtalk_pipelines import LABEL_KEYS, RECIPES, detect_recipe, get_recipe, labels_for_path
from medtalk_pipelines.labels_csv import apply_overrides, read_labels_csv


def _labels(relpath: str, root: Path | None = None) -> dict:
    return labels_for_path("auto", root)(relpath)


def test_every_recipe_returns_every_key() -> None:
    samples = {
        "ravdess": "Actor_01/01-01-05-02-01-01-01.mp4",
        "cremad": "1001_DFA_ANG_XX.wav",
        "mead": "M003/video/front/angry/level_1/001.mp4",
        "emoface": "angry_gd04_001_021.wav",
        "hdtf": "WDA_BarackObama_000.mp4",
        "vocaset": "FaceTalk_170728_03272_TA_sentence01.wav",
        "biwi": "F2_e01.npy",
        "generic": "my videos/take1.mp4",
    }
    assert set(samples) == set(RECIPES)
    for name, relpath in samples.items():
        assert detect_recipe(relpath).name == name, relpath
        labels = _labels(relpath)
        assert labels["recipe"] == name and set(LABEL_KEYS) <= set(labels)


def test_canonical_emotions_and_mapping_rule() -> None:
    assert CANONICAL_EMOTIONS == ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
    assert [emotion_id(e) for e in CANONICAL_EMOTIONS] == list(range(7))
    for raw, canonical in {
        "calm": "neutral",
        "contempt": "disgust",
        "fearful": "fear",
        "surprised": "surprise",
        "disgusted": "disgust",
        "furious": "angry",
        "ANG": "angry",
        "SUR": "surprise",
        "surp": "surprise",
        "disg": "disgust",
        "emotional": None,
        "song": None,
    }.items():
        assert canonical_emotion(raw) == canonical, raw
    assert emotion_word_in_name("sadtalker_happy") == "happy"  # 'sadtalker' is not the word 'sad'
    assert emotion_word_in_name("styletalk_furious_talk1_clip1") == "furious"
    assert emotion_word_in_name("angry_and_happy") is None  # two emotions: ambiguous, none claimed


@pytest.mark.parametrize(
    ("name", "emotion", "raw", "intensity", "sex", "statement"),
    [
        ("01-01-01-01-01-01-01.mp4", "neutral", "neutral", 0.0, "M", "01"),
        ("01-01-02-02-02-01-02.mp4", "neutral", "calm", 1.0, "F", "02"),
        ("02-01-03-01-01-02-03.mp4", "happy", "happy", 0.5, "M", "01"),
        ("03-01-04-02-02-02-24.wav", "sad", "sad", 1.0, "F", "02"),
        ("01-02-05-01-01-01-11.mp4", "angry", "angry", 0.5, "M", "01"),
        ("01-01-06-02-01-01-12.mp4", "fear", "fearful", 1.0, "F", "01"),
        ("01-01-07-01-01-01-13.mp4", "disgust", "disgust", 0.5, "M", "01"),
        ("01-01-08-02-02-02-14.mp4", "surprise", "surprised", 1.0, "F", "02"),
    ],
)
def test_ravdess(name: str, emotion: str, raw: str, intensity: float, sex: str, statement: str) -> None:
    labels = _labels(f"Actor_{name[-6:-4]}/{name}")
    assert labels["dataset"] == "ravdess" and labels["emotion"] == emotion and labels["emotion_raw"] == raw
    assert labels["intensity"] == intensity and labels["sex"] == sex
    assert (
        labels["transcript"] == {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}[statement]
    )
    song_or_speech = "song" if name.split("-")[1] == "02" else "speech"
    assert labels["content_id"] == f"ravdess:{song_or_speech}:{statement}"


def test_ravdess_rejects_impossible_codes() -> None:
    assert detect_recipe("01-01-09-01-01-01-01.mp4").name == "generic"  # emotion 09 does not exist
    assert detect_recipe("01-01-01-01-01-01-25.mp4").name == "generic"  # actors are 01-24


def test_cremad_all_sentences_and_levels() -> None:
    sentences = ["IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS", "TSI", "WSI"]
    for sentence in sentences:
        labels = _labels(f"AudioWAV/1001_{sentence}_HAP_MD.wav")
        assert labels["content_id"] == f"cremad:{sentence}" and labels["transcript"]
        assert labels["intensity"] == pytest.approx(2 / 3)
    assert _labels("1091_IEO_ANG_HI.wav")["intensity"] == 1.0
    assert _labels("1050_IEO_SAD_LO.wav")["intensity"] == pytest.approx(1 / 3)
    assert _labels("1050_IEO_FEA_XX.wav")["intensity"] is None  # level unspecified
    assert _labels("1050_IEO_NEU_XX.wav")["intensity"] == 0.0
    assert _labels("1050_DFA_DIS_XX.flv")["emotion"] == "disgust"
    assert _labels("1050_DFA_DIS_XX.flv")["sex"] is None  # not in the name: VideoDemographics.csv


MEAD_TREE = [
    "M003/video/front/angry/level_1/001.mp4",
    "M003/video/left_30/angry/level_1/001.mp4",
    "M003/video/down/neutral/level_1/040.mp4",
    "W015/video/right_60/contempt/level_3/030.mp4",
    "M012/1/top/surprised/level_2/012.mp4",
    "M003/audio/angry/level_1/001.m4a",
    "M041/audio/sad/level_2/019.m4a",  # M041 sad level_2 020-023 are known to lack audio: nothing to pair
]


def test_mead_tree_flattened_and_pairing() -> None:
    for relpath in MEAD_TREE:
        assert detect_recipe(relpath).name == "mead", relpath
    front, left, audio = (_labels(p) for p in (MEAD_TREE[0], MEAD_TREE[1], MEAD_TREE[5]))
    assert front["pair_key"] == left["pair_key"] == audio["pair_key"] == "mead:M003:angry:1:001"
    assert front["view"] == "front" and left["view"] == "left_30" and audio["view"] is None
    assert front["sex"] == "M" and _labels(MEAD_TREE[3])["sex"] == "F"
    assert _labels(MEAD_TREE[3])["emotion"] == "disgust" and _labels(MEAD_TREE[3])["emotion_raw"] == "contempt"
    assert _labels(MEAD_TREE[2])["intensity"] == 0.0
    assert _labels(MEAD_TREE[4])["intensity"] == pytest.approx(2 / 3)
    # only the common sentences are claimed to be the same across emotions
    assert front["content_id"] == "mead:001"
    assert _labels(MEAD_TREE[3])["content_id"] == "mead:contempt:030"
    flat = _labels("mead_W009_front_angry_level3_001.mp4")
    assert (flat["speaker"], flat["emotion"], flat["intensity"], flat["content_id"]) == (
        "mead:W009",
        "angry",
        1.0,
        "mead:001",
    )
    assert _labels("W011_front_happy_level_2_017.mp4")["dataset"] == "mead"


def test_other_datasets() -> None:
    hdtf = _labels("WDA_BarackObama_000.mp4")
    assert (hdtf["dataset"], hdtf["speaker"], hdtf["emotion"]) == ("hdtf", "hdtf:BarackObama", None)
    assert _labels("BarackObama_0.mp4")["speaker"] == "hdtf:BarackObama"
    assert detect_recipe("clip_001.mp4").name == "generic"  # not mistaken for HDTF
    voca = _labels("FaceTalk_170728_03272_TA/sentence01.wav".replace("/", "_"))
    assert voca["dataset"] == "vocaset" and voca["content_id"] == "vocaset:01"
    biwi = _labels("F2_e01.npy")
    assert (biwi["speaker"], biwi["sex"], biwi["emotion"], biwi["content_id"]) == ("biwi:F2", "F", None, "biwi:01")
    assert _labels("M3_40.wav")["emotion"] == "neutral"
    emo = _labels("disg_sp03_001_031.wav")
    assert (emo["dataset"], emo["emotion"], emo["speaker"]) == ("emoface", "disgust", "emoface:sp03")


def test_recipes_on_the_real_shared_files(shared_data: Path) -> None:
    labels = {
        f"{d}/{n}": _labels(f"{d}/{n}", shared_data)
        for d in ("video", "video_noaudio", "audio", "emoface")
        for n in os.listdir(shared_data / d)
    }
    mead = {k: v for k, v in labels.items() if v["dataset"] == "mead"}
    assert len(mead) == 16 and {v["speaker"] for v in mead.values()} == {"mead:W009", "mead:W011"}
    assert {v["emotion"] for v in mead.values()} == set(CANONICAL_EMOTIONS)
    assert {v["content_id"] for v in mead.values()} == {"mead:001"}  # one sentence, 8 emotions: real content pairs
    actor = labels["emoface/angry_gd04_001_021_actor_with_wav.mp4"]
    assert actor["dataset"] == "emoface" and actor["emotion"] == "angry"
    assert (
        actor["rig_curves_path"].endswith("angry_gd04_001_021_rig174.txt") and Path(actor["rig_curves_path"]).is_file()
    )
    assert actor["rig_names_path"].endswith("metahuman_attr_names.txt")
    assert labels["audio/medtalk_surp_gd07_001_017.wav"]["emotion"] == "surprise"
    assert labels["video/hdtf_WDA_AlexandriaOcasioCortez_000.mp4"]["speaker"] == "hdtf:AlexandriaOcasioCortez"
    assert labels["audio/emotalk_ravdess_angry1.wav"]["emotion"] == "angry"  # generic, from the word in the name
    assert labels["video_noaudio/styletalk_furious_talk1_clip1.mp4"]["emotion"] == "angry"


def test_forcing_a_recipe_that_does_not_fit_falls_back_visibly() -> None:
    labels = labels_for_path("ravdess")("holiday.mp4")
    assert labels["recipe_mismatch"] is True and labels["emotion"] is None
    with pytest.raises(KeyError, match="unknown recipe"):
        get_recipe("nope")


# --- labels CSV ----------------------------------------------------------------------------------


def test_labels_csv_overrides(tmp_path: Path) -> None:
    csv = tmp_path / "labels.csv"
    csv.write_text("clip_id,speaker,emotion,intensity,sex\na,alice,Furious,0.8,f\nb,,,,\n", encoding="utf-8")
    overrides = read_labels_csv(csv, {"a", "b", "c"})
    assert overrides == {
        "a": {"speaker": "alice", "emotion": "angry", "emotion_raw": "Furious", "intensity": 0.8, "sex": "F"},
        "b": {},
    }
    merged = apply_overrides({"speaker": "x", "emotion": None, "dataset": "generic"}, overrides["a"])
    assert merged["speaker"] == "alice" and merged["dataset"] == "generic" and "speaker" in merged["overridden_by_csv"]


def test_labels_csv_lists_every_problem(tmp_path: Path) -> None:
    csv = tmp_path / "labels.csv"
    csv.write_text(
        "clip_id,emotion,intensity,mood\n"
        "a,happy,0.5,x\n"
        "ghost,sad,0.1,x\n"
        "b,bored,0.2,x\n"
        "c,sad,1.5,x\n"
        "a,sad,0.1,x\n"
        ",sad,0.1,x\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        read_labels_csv(csv, {"a", "b", "c"})
    message = str(info.value)
    for needle in (
        "'mood'",
        "row 3: unknown clip_id 'ghost'",
        "row 4: unknown emotion 'bored'",
        "row 5: intensity '1.5'",
        "row 6: clip_id 'a' appears twice",
        "row 7: empty clip_id",
        "6 problems",
    ):
        assert needle in message, needle
    assert "\n" not in message


def test_labels_csv_wrong_encoding_or_columns(tmp_path: Path) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes("clip_id,speaker\na,Jos\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_labels_csv(latin)
    nocol = tmp_path / "nocol.csv"
    nocol.write_text("id,emotion\na,happy\n")
    with pytest.raises(ConfigError, match="no 'clip_id' column"):
        read_labels_csv(nocol)


def test_extract_applies_the_csv_and_refreshes_labels_without_re_extracting(shared_data: Path, tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from medtalk_cli.data import cli

    videos = tmp_path / "v"
    videos.mkdir()
    (videos / "mead_W009_front_happy_level3_001.mp4").symlink_to(
        shared_data / "video_noaudio" / "mead_W009_front_happy_level3_001.mp4"
    )
    csv = tmp_path / "labels.csv"
    csv.write_text("clip_id,intensity\nmead_W009_front_happy_level3_001,0.7\n")
    args = ["extract", str(videos), "--out", str(tmp_path / "o"), "-j", "1", "--no-progress", "--labels-csv", str(csv)]
    assert CliRunner().invoke(cli, args).exit_code == 0
    status_file = tmp_path / "o" / "clips" / "mead_W009_front_happy_level3_001" / "status.json"
    labels = json.loads(status_file.read_text())["labels"]
    assert (labels["recipe"], labels["emotion"], labels["intensity"], labels["speaker"]) == (
        "mead",
        "happy",
        0.7,
        "mead:W009",
    )
    frames_before = (status_file.parent / "frames.parquet").stat().st_mtime_ns
    csv.write_text("clip_id,intensity\nmead_W009_front_happy_level3_001,0.2\n")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0 and "1 skipped" in result.output
    assert json.loads(status_file.read_text())["labels"]["intensity"] == 0.2
    assert (status_file.parent / "frames.parquet").stat().st_mtime_ns == frames_before
    bad = tmp_path / "bad.csv"
    bad.write_text("clip_id,emotion\nnot_a_clip,happy\n")
    result = CliRunner().invoke(cli, [*args[:-1], str(bad)])
    assert result.exit_code == 2 and "unknown clip_id 'not_a_clip'" in result.output
