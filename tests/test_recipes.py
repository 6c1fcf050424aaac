"""Dataset recipes on real file-name lists, the canonical emotion mapping, pairing and the labels CSV."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from medtalk_cli.data import cli as data_cli
from medtalk_data.emotions import CANONICAL_EMOTIONS, EMOTION_IDS, canonical_emotion, emotion_id, emotion_word_in_name
from medtalk_data.errors import ConfigError
from medtalk_pipelines import LABEL_KEYS, RECIPES, detect_recipe, find_pairs, get_recipe, labels_for_path
from medtalk_pipelines.labels_csv import COLUMNS, apply_overrides, read_labels_csv


def _labels(relpath: str, root: Path | None = None) -> dict:
    return labels_for_path("auto", root)(relpath)


def _recipe(relpath: str) -> str:
    return detect_recipe(relpath).name


# --- registry ------------------------------------------------------------------------------------


def test_every_recipe_is_listed_detected_from_its_example_and_returns_every_key() -> None:
    assert set(RECIPES) == {"ravdess", "cremad", "mead", "emoface", "hdtf", "vocaset", "biwi", "generic"}
    priorities = [r.priority for r in RECIPES.values()]
    assert priorities == sorted(priorities, reverse=True) and list(RECIPES)[-1] == "generic"  # generic last
    for name, recipe in RECIPES.items():
        assert recipe.example and _recipe(recipe.example) == name, recipe.example
        labels = _labels(recipe.example)
        assert labels["recipe"] == name and set(LABEL_KEYS) <= set(labels), name
        assert not any(k.startswith("_") for k in labels)  # internal keys never leave the registry
        assert labels["emotion"] is None or labels["emotion"] in CANONICAL_EMOTIONS
        assert labels["intensity"] is None or 0.0 <= labels["intensity"] <= 1.0
        assert labels["sex"] in (None, "M", "F")


def test_recipes_command_lists_every_recipe_and_extract_accepts_each_name(tmp_path: Path) -> None:
    from medtalk_cli.data import cli

    result = CliRunner().invoke(cli, ["recipes"])
    assert result.exit_code == 0
    assert [line.split(":")[0] for line in result.output.splitlines() if line] == ["auto", *RECIPES]
    for name in ["auto", *RECIPES]:
        assert get_recipe(name) is (None if name == "auto" else RECIPES[name])
    with pytest.raises(KeyError, match="unknown recipe 'nope'; choose auto or one of ravdess"):
        get_recipe("nope")


def test_forcing_a_recipe_that_does_not_fit_falls_back_visibly() -> None:
    labels = labels_for_path("ravdess")("holiday_happy.mp4")
    assert labels["recipe"] == "ravdess" and labels["recipe_mismatch"] is True
    assert labels["dataset"] == "generic" and labels["emotion"] == "happy"
    forced = labels_for_path("mead")("M003/video/front/angry/level_1/001.mp4")
    assert forced["dataset"] == "mead" and "recipe_mismatch" not in forced
    assert labels_for_path("generic")("Actor_01/01-01-05-02-01-01-01.mp4")["dataset"] == "generic"


# --- canonical emotions --------------------------------------------------------------------------

RAW_LABELS = {
    # RAVDESS
    "neutral": "neutral",
    "calm": "neutral",
    "happy": "happy",
    "sad": "sad",
    "angry": "angry",
    "fearful": "fear",
    "disgust": "disgust",
    "surprised": "surprise",
    # CREMA-D
    "ANG": "angry",
    "DIS": "disgust",
    "FEA": "fear",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
    # MEAD
    "contempt": "disgust",
    "disgusted": "disgust",
    "fear": "fear",
    # EmoFace / MEDTalk names and EmoFace's three-letter keys
    "disg": "disgust",
    "surp": "surprise",
    "sur": "surprise",
    "hap": "happy",
    # StyleTalk names, nouns, case and blanks
    "furious": "angry",
    "Anger": "angry",
    " Happiness ": "happy",
    "joy": "happy",
    "sadness": "sad",
    "surprise": "surprise",
    # no canonical label
    "emotional": None,  # BIWI's unnamed emotional take
    "bored": None,
    "EMO_UNKNOWN": None,
    "": None,
}


def test_canonical_emotions_in_medtalk_order_and_the_mapping_rule() -> None:
    assert CANONICAL_EMOTIONS == ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
    assert [emotion_id(e) for e in CANONICAL_EMOTIONS] == list(range(7)) == list(EMOTION_IDS.values())
    assert (emotion_id("calm"), emotion_id("contempt"), emotion_id("SUR")) == (4, 1, 6)
    for raw, canonical in RAW_LABELS.items():
        assert canonical_emotion(raw) == canonical, raw
    assert canonical_emotion(None) is None
    with pytest.raises(ValueError, match="'bored' is not one of angry, disgust"):
        emotion_id("bored")


@pytest.mark.parametrize(
    ("name", "word"),
    [
        ("sadtalker_happy", "happy"),  # 'sadtalker' is not the word 'sad'
        ("sadtalker_sad", "sad"),
        ("styletalk_furious_talk1_clip1", "furious"),
        ("styletalk_sadgirl_clip1", "sad"),  # glued to a plain noun
        ("styletalk_happyenglish_clip1", "happy"),
        ("styletalk_surprisegirl_clip2", "surprise"),
        ("emotalk_ravdess_angry1", "angry"),  # trailing digits
        ("mead_eamm_contempt", "contempt"),
        ("HappyGirl", "happy"),  # camel case
        ("happy_joy_take", "happy"),  # two words, one emotion
        ("angry_and_happy", None),  # two emotions: ambiguous, none claimed
        ("sadtalker_demo", None),
        ("fearless_leader", None),
        ("madrid_dis_sur", None),  # three-letter codes are not read in free names
        ("pcavs_input_00010", None),
    ],
)
def test_emotion_word_in_a_free_file_name(name: str, word: str | None) -> None:
    assert emotion_word_in_name(name) == word


# --- RAVDESS -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "emotion", "raw", "level", "intensity", "sex"),
    [
        ("01-01-01-01-01-01-01.mp4", "neutral", "neutral", "normal", 0.0, "M"),
        ("01-01-02-02-02-01-02.mp4", "neutral", "calm", "strong", 1.0, "F"),  # calm keeps its level
        ("02-01-03-01-01-02-03.mp4", "happy", "happy", "normal", 0.5, "M"),
        ("03-01-04-02-02-02-24.wav", "sad", "sad", "strong", 1.0, "F"),
        ("01-01-05-01-01-01-11.mp4", "angry", "angry", "normal", 0.5, "M"),
        ("01-01-06-02-01-01-12.mp4", "fear", "fearful", "strong", 1.0, "F"),
        ("01-01-07-01-01-01-13.mp4", "disgust", "disgust", "normal", 0.5, "M"),
        ("01-01-08-02-02-02-14.mp4", "surprise", "surprised", "strong", 1.0, "F"),
    ],
)
def test_ravdess_all_eight_emotions(name: str, emotion: str, raw: str, level: str, intensity: float, sex: str) -> None:
    actor = name[-6:-4]
    labels = _labels(f"Video_Speech_Actor_{actor}/Actor_{actor}/{name}")
    assert (labels["dataset"], labels["speaker"], labels["sex"]) == ("ravdess", f"ravdess:actor{actor}", sex)
    assert (labels["emotion"], labels["emotion_raw"], labels["emotion_level_raw"]) == (emotion, raw, level)
    assert labels["intensity"] == intensity and labels["language"] == "en" and labels["vocal_channel"] == "speech"
    statement = name.split("-")[4]
    assert (
        labels["transcript"] == {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}[statement]
    )
    assert labels["content_id"] == f"ravdess:speech:{statement}"


def test_ravdess_song_speech_modalities_and_actor_sex() -> None:
    song = _labels("Audio_Song_Actors_01-24/Actor_05/03-02-06-01-02-01-05.wav")
    assert (song["vocal_channel"], song["content_id"], song["modality"]) == ("song", "ravdess:song:02", "audio-only")
    assert song["transcript"] == "Dogs are sitting by the door" and song["emotion"] == "fear"
    # the same statement spoken in another emotion by another actor is the same content
    assert _labels("01-01-03-01-02-02-18.mp4")["content_id"] == "ravdess:speech:02"
    for actor in range(1, 25):
        assert _labels(f"01-01-03-01-01-01-{actor:02d}.mp4")["sex"] == ("M" if actor % 2 else "F")
    # audio-video, video-only and audio-only of one take pair; the other repetition does not
    takes = find_pairs(["01-01-05-02-01-01-09.mp4", "02-01-05-02-01-01-09.mp4", "03-01-05-02-01-01-09.wav",
                        "01-01-05-02-01-02-09.mp4"])  # fmt: skip
    take = takes.takes["ravdess:09:01-05-02-01-01"]
    assert take.video == ["01-01-05-02-01-01-09.mp4", "02-01-05-02-01-01-09.mp4"]
    assert take.audio == ["03-01-05-02-01-01-09.wav"] and takes.video_only == ["ravdess:09:01-05-02-01-02"]


def test_ravdess_rejects_codes_the_dataset_never_uses() -> None:
    for name in (
        "01-01-09-01-01-01-01.mp4",  # emotion 09 does not exist
        "01-01-01-01-01-01-25.mp4",  # actors are 01-24
        "01-01-01-01-01-01-00.mp4",
        "01-02-07-01-01-01-01.mp4",  # no sung disgust
        "01-02-08-02-01-01-01.mp4",  # no sung surprise
        "01-01-01-02-01-01-01.mp4",  # neutral has no strong intensity
        "04-01-03-01-01-01-01.mp4",  # modality 04
        "01-01-03-01-03-01-01.mp4",  # statement 03
    ):
        assert _recipe(name) == "generic", name
    # a re-hosting prefix is fine: the code itself is distinctive
    assert _labels("image/ravdess_01-01-03-02-01-01-24.mp4")["speaker"] == "ravdess:actor24"


# --- CREMA-D -------------------------------------------------------------------------------------

CREMAD_SENTENCES = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}


def test_cremad_all_sentences_emotions_and_levels() -> None:
    for sentence, text in CREMAD_SENTENCES.items():
        labels = _labels(f"AudioWAV/1001_{sentence}_HAP_XX.wav")
        assert (labels["content_id"], labels["transcript"]) == (f"cremad:{sentence}", text)
        assert labels["intensity"] is None and labels["emotion_level_raw"] == "XX"  # unspecified: not guessed
    for code, emotion in {"ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "SAD": "sad"}.items():
        for level, intensity in {"LO": 1 / 3, "MD": 2 / 3, "HI": 1.0}.items():
            labels = _labels(f"VideoFlash/1091_IEO_{code}_{level}.flv")
            assert (labels["emotion"], labels["emotion_raw"], labels["speaker"]) == (emotion, code, "cremad:1091")
            assert labels["intensity"] == pytest.approx(intensity)
    neutral = _labels("1050_IEO_NEU_XX.wav")
    assert (neutral["emotion"], neutral["intensity"], neutral["sex"]) == ("neutral", 0.0, None)  # sex not in name
    assert _labels("cremad_1001_DFA_ANG_XX.wav")["dataset"] == "cremad"  # re-hosting prefix
    for name in ("1000_DFA_ANG_XX.wav", "1092_DFA_ANG_XX.wav", "1001_ABC_ANG_XX.wav", "1001_DFA_CON_XX.wav"):
        assert _recipe(name) == "generic", name
    takes = find_pairs(["AudioWAV/1001_DFA_ANG_XX.wav", "VideoFlash/1001_DFA_ANG_XX.flv"])
    assert takes.paired == ["cremad:1001_DFA_ANG_XX"]


def test_cremad_sex_from_the_demographics_table_beside_the_data(tmp_path: Path) -> None:
    (tmp_path / "AudioWAV").mkdir()
    (tmp_path / "VideoDemographics.csv").write_text(
        "ActorID,Age,Sex,Race,Ethnicity\n1001,51,Male,Caucasian,Not Hispanic\n1002,21,Female,Caucasian,Not Hispanic\n"
    )
    label = labels_for_path("auto", root=tmp_path)
    assert label("AudioWAV/1001_DFA_ANG_XX.wav")["sex"] == "M"
    assert label("AudioWAV/1002_DFA_ANG_XX.wav")["sex"] == "F"
    assert label("AudioWAV/1003_DFA_ANG_XX.wav")["sex"] is None  # not in the table


# --- MEAD ----------------------------------------------------------------------------------------

MEAD_VIEWS = ("front", "down", "top", "left_30", "left_60", "right_30", "right_60")
MEAD_EMOTIONS = ("angry", "contempt", "disgusted", "fear", "happy", "neutral", "sad", "surprised")


def _mead_tree(actor: str, utterances: range, views=MEAD_VIEWS, emotions=MEAD_EMOTIONS) -> list[str]:
    paths = []
    for emotion in emotions:
        for level in (1,) if emotion == "neutral" else (1, 2, 3):
            for u in utterances:
                paths.append(f"{actor}/audio/{emotion}/level_{level}/{u:03d}.m4a")
                paths += [f"{actor}/video/{view}/{emotion}/level_{level}/{u:03d}.mp4" for view in views]
    return paths


def test_mead_official_tree_views_emotions_levels() -> None:
    tree = _mead_tree("M005", range(1, 4))
    assert {_recipe(p) for p in tree} == {"mead"}
    labels = [_labels(p) for p in tree]
    assert {x["view"] for x in labels} == {*MEAD_VIEWS, None}
    assert {x["emotion"] for x in labels} == set(CANONICAL_EMOTIONS)
    assert {(x["emotion_level_raw"], x["intensity"]) for x in labels if x["emotion_raw"] != "neutral"} == {
        ("level_1", 1 / 3),
        ("level_2", 2 / 3),
        ("level_3", 1.0),
    }
    assert {x["intensity"] for x in labels if x["emotion_raw"] == "neutral"} == {0.0}
    assert {(x["speaker"], x["sex"], x["language"]) for x in labels} == {("mead:M005", "M", "en")}
    front = _labels("MEAD/W015/video/front/contempt/level_3/030.mp4")
    assert (front["sex"], front["emotion"], front["emotion_raw"], front["transcript"]) == (
        "F",
        "disgust",
        "contempt",
        None,
    )
    variant = _labels("M012/1/top/surprised/level_2/012.mp4")  # the "1"/"2" second component
    assert (variant["view"], variant["emotion"], variant["pair_key"]) == (
        "top",
        "surprise",
        "mead:M012:surprised:2:012",
    )
    assert _labels("M012/audio/sad/level_1/001.m4a")["modality"] == "audio"
    for bad in ("M003/video/front/angry/level_4/001.mp4", "M003/video/back/angry/level_1/001.mp4",
                "M003/video/front/bored/level_1/001.mp4", "X003/video/front/angry/level_1/001.mp4"):  # fmt: skip
        assert _recipe(bad) == "generic", bad


def test_mead_flattened_names() -> None:
    flat = _labels("video_noaudio/mead_W009_front_angry_level3_001.mp4")
    assert (flat["speaker"], flat["view"], flat["emotion"], flat["intensity"], flat["pair_key"]) == (
        "mead:W009",
        "front",
        "angry",
        1.0,
        "mead:W009:angry:3:001",
    )
    assert _labels("W011_left_30_happy_level_2_017.mp4")["view"] == "left_30"
    audio = _labels("dreamtalk_W011_surprise_level_1_002.m4a")  # re-hosting prefix, no view, other spelling
    assert (audio["dataset"], audio["view"], audio["emotion_raw"], audio["modality"]) == (
        "mead",
        None,
        "surprised",
        "audio",
    )
    assert _recipe("mead_eamm_happy.mp4") == "generic"  # no actor, level or number: only the emotion word


def test_mead_content_id_claims_only_the_common_sentences_across_emotions() -> None:
    def cid(p: str) -> str:
        return _labels(p)["content_id"]

    # the common sentences: one content over emotions, levels, views and actors
    common = {cid(f"{a}/video/{v}/{e}/level_{lv}/002.mp4") for a in ("M005", "W011") for v in ("front", "down")
              for e in MEAD_EMOTIONS for lv in ((1,) if e == "neutral" else (1, 2, 3))}  # fmt: skip
    assert common == {"mead:002"}
    # any other number is a different sentence in another emotion; the same across levels and actors
    assert cid("M005/video/front/angry/level_1/017.mp4") == cid("W011/audio/angry/level_3/017.m4a") == "mead:angry:017"
    assert cid("M005/video/front/happy/level_1/017.mp4") == "mead:happy:017"
    assert cid("M005/video/front/contempt/level_1/017.mp4") != cid("M005/video/front/disgusted/level_1/017.mp4")
    assert cid("M005/video/front/neutral/level_1/040.mp4") == "mead:neutral:040"
    # M003's numbering is known to be shifted (uniBruce/Mead#12): no pair is claimed for it
    assert cid("M003/video/front/disgusted/level_1/001.mp4") == "mead:M003:disgusted:level_1:001"
    assert cid("M003/video/front/neutral/level_1/001.mp4") != cid("M003/video/front/disgusted/level_1/001.mp4")


def test_mead_pairs_views_with_audio_and_shows_the_known_holes() -> None:
    # M041 sad level_2 020-023: videos whose audio may be missing
    tree = [p for p in _mead_tree("M041", range(18, 26), emotions=("sad",))
            if not (p.endswith(".m4a") and "/level_2/" in p and p[-7:-4] in {"020", "021", "022", "023"})]  # fmt: skip
    report = find_pairs(tree)
    assert sorted(report.video_only) == [f"mead:M041:sad:2:{u:03d}" for u in range(20, 24)]
    assert report.audio_only == [] and len(report.paired) == 3 * 8 - 4
    take = report.takes["mead:M041:sad:2:019"]
    assert len(take.video) == 7 and take.audio == ["M041/audio/sad/level_2/019.m4a"]
    # W017 / M019 / M011 miss some views or emotions: what is there is labelled and paired
    partial = _mead_tree("W017", range(1, 3), views=("front", "left_30")) + _mead_tree(
        "M019", range(1, 3), emotions=("angry", "happy", "neutral")
    )
    report = find_pairs(partial)
    assert report.video_only == report.audio_only == [] and report.no_pair_key == []
    assert len(report.takes["mead:W017:fear:3:002"].video) == 2
    assert {_labels(p)["speaker"] for p in partial} == {"mead:W017", "mead:M019"}


# --- MEDTalk / EmoFace ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relpath", "emotion", "raw", "speaker", "variant", "pair_key"),
    [
        ("validation/WAV/angry_gd04_001_021.wav", "angry", "angry", "gd04", "audio", "angry:001_021"),
        ("validation/ACTOR/angry_gd04_001_021.mov", "angry", "angry", "gd04", "actor", "angry:001_021"),
        ("validation/VIDEO/angry_gd04_001_021.mov", "angry", "angry", "gd04", "render", "angry:001_021"),
        ("emoface/angry_gd04_001_021_actor_with_wav.mp4", "angry", "angry", "gd04", "actor", "angry:001_021"),
        ("emoface/angry_gd04_001_021_render.mov", "angry", "angry", "gd04", "render", "angry:001_021"),
        ("audio/medtalk_disg_sp03_001_031.wav", "disgust", "disg", "sp03", "audio", "disgust:001_031"),
        ("audio/medtalk_surp_gd07_001_017.wav", "surprise", "surp", "gd07", "audio", "surprise:001_017"),
        ("train/WAV/angry_spe01_001_033.wav", "angry", "angry", "spe01", "audio", "angry:001_033"),
        ("train/WAV/neutral_gd01_008.wav", "neutral", "neutral", "gd01", "audio", "neutral:008"),
        ("train/WAV/fear_zr03_001_005.wav", "fear", "fear", "zr03", "audio", "fear:001_005"),
        ("sad_gd14_001_030.mp4", "sad", "sad", "gd14", None, "sad:001_030"),
    ],
)
def test_emoface_names(relpath: str, emotion: str, raw: str, speaker: str, variant: str | None, pair_key: str) -> None:
    labels = _labels(relpath)
    assert labels["dataset"] == "emoface" and labels["speaker"] == f"emoface:{speaker}"
    assert (labels["emotion"], labels["emotion_raw"], labels["variant"]) == (emotion, raw, variant)
    assert labels["pair_key"] == f"emoface:{speaker}:{pair_key}"
    assert (labels["language"], labels["content_id"], labels["intensity"], labels["sex"]) == ("zh", None, None, None)


def test_emoface_rig_files_in_the_official_layout(tmp_path: Path) -> None:
    split = tmp_path / "dataset" / "validation"
    for sub in ("WAV", "ACTOR", "VIDEO", "VALID_CTR"):
        (split / sub).mkdir(parents=True)
    (split / "VALID_CTR" / "angry_gd04_001_021.txt").write_text(",".join(["0.1"] * 174) + "\n")
    (split / "VALID_CTR" / "happy_gd01_001_014.txt").write_text(",".join(["0.1"] * 52) + "\n")  # wrong width
    (tmp_path / "visualization").mkdir()
    (tmp_path / "visualization" / "metahuman_attr_names.txt").write_text("\n".join(f"c{i}" for i in range(174)))
    label = labels_for_path("auto", root=tmp_path)
    for sub, ext in (("WAV", "wav"), ("ACTOR", "mov"), ("VIDEO", "mov")):
        labels = label(f"dataset/validation/{sub}/angry_gd04_001_021.{ext}")
        assert labels["rig_curves_path"] == str((split / "VALID_CTR" / "angry_gd04_001_021.txt").resolve())
        assert labels["rig_names_path"] == str((tmp_path / "visualization" / "metahuman_attr_names.txt").resolve())
    wrong = label("dataset/validation/WAV/happy_gd01_001_014.wav")
    assert wrong["rig_curves_path"] is None and "52 values per row, expected 174" in wrong["rig_problem"]
    missing = label("dataset/validation/WAV/sad_gd01_001_001.wav")
    assert missing["rig_curves_path"] is None and "rig_problem" not in missing
    assert labels_for_path("auto")("dataset/validation/WAV/angry_gd04_001_021.wav")["rig_curves_path"] is None


def test_not_emoface() -> None:
    for name in ("angry_gd04.wav", "angry_g4_001_021.wav", "bored_gd04_001_021.wav", "angry_gd04_1_21.wav"):
        assert _recipe(name) != "emoface", name


# --- HDTF, VOCASET, BIWI -------------------------------------------------------------------------


def test_hdtf_both_forms() -> None:
    for relpath, speaker, key in (
        ("HDTF/WDA_BarackObama_000.mp4", "hdtf:BarackObama", "hdtf:WDA_BarackObama_000"),
        ("WRA_AdamKinzinger0_002.mp4", "hdtf:AdamKinzinger", "hdtf:WRA_AdamKinzinger0_002"),
        ("video/hdtf_WDA_AlexandriaOcasioCortez_000.mp4", "hdtf:AlexandriaOcasioCortez", None),
        ("audio/hdtf_RD_Radio31_000.wav", "hdtf:Radio31", "hdtf:RD_Radio31_000"),  # a radio address: its own speaker
        ("BarackObama_0.mp4", "hdtf:BarackObama", "hdtf:BarackObama_0"),
        ("hdtf_JoeBiden_12.mp4", "hdtf:JoeBiden", "hdtf:JoeBiden_12"),
    ):
        labels = _labels(relpath)
        assert (labels["dataset"], labels["speaker"], labels["emotion"]) == ("hdtf", speaker, None), relpath
        assert key is None or labels["pair_key"] == key
    assert _labels("WDA_BarackObama_000.mp4")["subset"] == "WDA"
    for name in ("clip_001.mp4", "Obama_0.mp4", "styletalk_Obama_clip1.mp4", "styletalk_KristiNoem.mp4",
                 "my_BarackObama_0.mp4"):  # fmt: skip
        assert _recipe(name) == "generic", name


def test_vocaset_names() -> None:
    for relpath in ("FaceTalk_170728_03272_TA_sentence01.wav", "audio/FaceTalk_170728_03272_TA/sentence01.wav",
                    "vertices_npy/FaceTalk_170728_03272_TA_sentence01.npy"):  # fmt: skip
        labels = _labels(relpath)
        assert (labels["dataset"], labels["speaker"], labels["emotion"]) == (
            "vocaset",
            "vocaset:FaceTalk_170728_03272_TA",
            None,
        )
        assert labels["content_id"] == "vocaset:FaceTalk_170728_03272_TA:01"  # scoped to the subject
    assert _labels("FaceTalk_170725_00137_TA_sentence40.wav")["content_id"] == "vocaset:FaceTalk_170725_00137_TA:40"
    assert _recipe("FaceTalk_170725_00137_TA_sentence41.wav") == "generic"


def test_biwi_names() -> None:
    subjects = [f"F{i}" for i in range(1, 9)] + [f"M{i}" for i in range(1, 7)]
    for subject in subjects:
        emotional, neutral = _labels(f"wav/{subject}_e07.wav"), _labels(f"vertices_npy/{subject}_07.npy")
        assert emotional["speaker"] == neutral["speaker"] == f"biwi:{subject}" and emotional["sex"] == subject[0]
        assert (emotional["emotion"], emotional["emotion_raw"], emotional["intensity"]) == (None, "emotional", None)
        assert (neutral["emotion"], neutral["emotion_raw"], neutral["intensity"]) == ("neutral", "neutral", 0.0)
        assert emotional["content_id"] == neutral["content_id"] == "biwi:07"  # same sentence, two deliveries
    assert _labels("biwi_F2_e01.npy")["dataset"] == "biwi"
    for name in ("M7_01.wav", "F9_01.wav", "F1_41.wav", "take_M1_01.mp4", "F1_x01.wav"):
        assert _recipe(name) == "generic", name


# --- the real files in shared/data --------------------------------------------------------------


def test_recipes_on_the_real_shared_files(shared_data: Path) -> None:
    labels = {
        f"{d}/{n}": _labels(f"{d}/{n}", shared_data)
        for d in ("video", "video_noaudio", "audio", "emoface", "image")
        for n in os.listdir(shared_data / d)
    }
    mead = {k: v for k, v in labels.items() if v["dataset"] == "mead"}
    assert len(mead) == 16 and {v["speaker"] for v in mead.values()} == {"mead:W009", "mead:W011"}
    assert {v["emotion"] for v in mead.values()} == set(CANONICAL_EMOTIONS)
    assert {v["content_id"] for v in mead.values()} == {"mead:001"}  # one sentence, 8 emotions: real content pairs
    assert {v["view"] for v in mead.values()} == {"front"} and {v["sex"] for v in mead.values()} == {"F"}
    emoface = {k: v for k, v in labels.items() if v["dataset"] == "emoface" and not k.endswith(".txt")}
    assert len(emoface) == 8
    take = [v for k, v in emoface.items() if k.startswith("emoface/")]
    assert {v["pair_key"] for v in take} == {"emoface:gd04:angry:001_021"}
    assert sorted(v["variant"] for v in take) == ["actor", "actor", "audio", "render"]
    for v in take:
        assert v["rig_curves_path"].endswith("angry_gd04_001_021_rig174.txt") and Path(v["rig_curves_path"]).is_file()
        assert v["rig_names_path"].endswith("metahuman_attr_names.txt")
    assert labels["audio/medtalk_surp_gd07_001_017.wav"]["emotion"] == "surprise"
    assert labels["audio/medtalk_disg_sp03_001_031.wav"]["emotion"] == "disgust"
    assert labels["video/hdtf_WDA_AlexandriaOcasioCortez_000.mp4"]["speaker"] == "hdtf:AlexandriaOcasioCortez"
    assert labels["audio/hdtf_RD_Radio31_000.wav"]["dataset"] == "hdtf"
    assert labels["image/ravdess_01-01-03-02-01-01-24.png"]["emotion"] == "happy"  # the MEDTalk RAVDESS frame
    # re-hosted copies whose names lost the dataset grammar: generic, emotion from the word
    expected = {
        "audio/emotalk_ravdess_angry1.wav": ("angry", "angry"),
        "audio/emotalk_ravdess_disgust.wav": ("disgust", "disgust"),
        "video_noaudio/mead_eamm_contempt.mp4": ("disgust", "contempt"),
        "video_noaudio/mead_eamm_surprised.mp4": ("surprise", "surprised"),
        "video_noaudio/styletalk_furious_talk1_clip1.mp4": ("angry", "furious"),
        "video_noaudio/styletalk_sadgirl_clip1.mp4": ("sad", "sad"),
        "video_noaudio/styletalk_happyenglish_clip1.mp4": ("happy", "happy"),
        "video_noaudio/styletalk_surprisegirl_clip2.mp4": ("surprise", "surprise"),
        "image/sadtalker_happy.png": ("happy", "happy"),
        "video/pcavs_input_00010.mp4": (None, None),
        "video/edtalk_uncrop_Obama.mp4": (None, None),
    }
    for path, (emotion, raw) in expected.items():
        assert labels[path]["dataset"] == "generic" and (labels[path]["emotion"], labels[path]["emotion_raw"]) == (
            emotion,
            raw,
        ), path
    generic_with_emotion = sum(v["dataset"] == "generic" and v["emotion"] is not None for v in labels.values())
    assert generic_with_emotion == 14  # 4 EmoTalk, 4 EAMM, 4 StyleTalk, 2 SadTalker


def _mouth(frames_path: Path) -> np.ndarray:
    """Per-clip z-scored mouth blendshapes resampled to 25 fps (NaN frames dropped)."""
    from medtalk_data.face.frames import read_frames

    names = ["jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthRollLower", "mouthRollUpper"]
    for part in ("LowerDown", "UpperUp", "Shrug", "Press", "Stretch"):
        names += (
            [f"mouth{part}Lower", f"mouth{part}Upper"]
            if part == "Shrug"
            else [f"mouth{part}{s}" for s in ("Left", "Right")]
        )
    f = read_frames(frames_path)
    x = np.stack([f.blendshape(n) for n in names], 1)
    t = np.arange(len(x)) / f.fps
    ok = ~np.isnan(x).any(1)
    grid = np.arange(t[ok][0], t[ok][-1], 1 / 25)
    y = np.stack([np.interp(grid, t[ok], x[ok, k]) for k in range(x.shape[1])], 1)
    return (y - y.mean(0)) / (y.std(0) + 1e-6)


def _dtw(a: np.ndarray, b: np.ndarray) -> float:
    cost = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    band = max(int(0.3 * max(n, m)), abs(n - m) + 1)
    for i in range(1, n + 1):
        lo, hi = max(1, i - band), min(m, i + band)
        for j in range(lo, hi + 1):
            acc[i, j] = cost[i - 1, j - 1] + min(acc[i - 1, j], acc[i, j - 1], acc[i - 1, j - 1])
    return float(acc[n, m] / (n + m))


@pytest.mark.realdata
@pytest.mark.slow
def test_mead_utterance_001_is_one_sentence_across_emotions(shared_data: Path, tmp_path: Path) -> None:
    """The evidence behind MEAD's content_id: W009's eight 001 clips move the mouth alike (DTW cost
    forwards well below the same clip reversed), other English speech does not (about 1)."""
    from medtalk_data.extract.batch import extract_videos
    from medtalk_data.settings import ExtractSettings

    videos = tmp_path / "v"
    videos.mkdir()
    mead = sorted(p for p in (shared_data / "video_noaudio").glob("mead_W009_*_001.mp4"))
    others = [shared_data / "video_noaudio" / f"styletalk_{n}.mp4" for n in ("furious_talk1_clip1", "sadgirl_clip1")]
    others.append(shared_data / "video" / "edtalk_mouth_source.mp4")
    for p in [*mead, *others]:
        (videos / p.name).symlink_to(p)
    report = extract_videos(
        videos, tmp_path / "o", settings=ExtractSettings(stages=["face"]), workers=2, progress=False
    )
    assert report.exit_code == 0
    clips = {p.stem: _mouth(tmp_path / "o" / "clips" / p.stem / "frames.parquet") for p in [*mead, *others]}
    mead_x = [clips[p.stem] for p in mead]
    windows = [w for p in others for w in (clips[p.stem][k : k + 100] for k in range(0, len(clips[p.stem]) - 60, 100))]
    same = np.array([_dtw(a, b) / _dtw(a, b[::-1]) for a, b in itertools.combinations(mead_x, 2)])
    null = np.array([_dtw(a, w) / _dtw(a, w[::-1]) for a in mead_x[::2] for w in windows])
    assert len(same) == 28 and len(null) >= 12
    # measured: same 0.74-1.00 (median 0.86), null 0.94-1.14 (median 1.03); same < null in 95% of the pairings
    assert (same < 1).mean() >= 0.9 and np.median(same) < 0.9, same
    assert np.median(null) > 0.95 and (same[:, None] < null[None, :]).mean() > 0.85, null


# --- labels CSV ----------------------------------------------------------------------------------


def test_labels_csv_overrides_are_typed_and_applied(tmp_path: Path) -> None:
    csv = tmp_path / "labels.csv"
    csv.write_text(
        "\ufeffClip_ID , Speaker,emotion,intensity,sex,language,transcript,content_id\n"
        'a,alice,Furious,0.8,female,en,"Hello, world",s01\n'
        "b,,,,,,,\n"
        "c,,none,none,m,zh-CN,,\n"
        "\n",
        encoding="utf-8",
    )
    overrides = read_labels_csv(csv, {"a", "b", "c", "d"})
    assert overrides == {
        "a": {
            "speaker": "alice",
            "emotion": "angry",
            "emotion_raw": "Furious",
            "intensity": 0.8,
            "sex": "F",
            "language": "en",
            "transcript": "Hello, world",
            "content_id": "s01",
        },
        "b": {},
        "c": {"emotion": None, "emotion_raw": None, "intensity": None, "sex": "M", "language": "zh-CN"},
    }
    recipe = _labels("Actor_24/01-01-03-02-01-01-24.mp4")
    merged = apply_overrides(recipe, overrides["a"])
    assert (merged["speaker"], merged["emotion"], merged["intensity"], merged["dataset"]) == (
        "alice",
        "angry",
        0.8,
        "ravdess",
    )
    assert merged["overridden_by_csv"] == sorted(overrides["a"]) and recipe["speaker"] == "ravdess:actor24"
    assert apply_overrides(recipe, {}) == recipe
    assert apply_overrides(recipe, overrides["c"])["emotion"] is None  # "none" clears the recipe's value
    semicolons = tmp_path / "semi.csv"
    semicolons.write_text("clip_id;emotion;intensity\na;sad;0,5\n".replace("0,5", "0.5"))
    assert read_labels_csv(semicolons, {"a"}) == {"a": {"emotion": "sad", "emotion_raw": "sad", "intensity": 0.5}}
    assert read_labels_csv(semicolons) == read_labels_csv(semicolons, {"a"})  # no known ids: not checked
    assert set(COLUMNS) >= {"speaker", "sex", "emotion", "intensity", "content_id", "transcript", "language", "dataset"}


def test_labels_csv_lists_every_problem_with_its_row(tmp_path: Path) -> None:
    csv = tmp_path / "labels.csv"
    csv.write_text(
        "clip_id,emotion,intensity,sex,language,emotoin\n"
        "a,happy,0.5,F,en,x\n"  # row 2: fine
        "ghost,sad,0.1,,,x\n"  # row 3
        "b,bored,0.2,,,x\n"  # row 4
        "c,sad,1.5,,,x\n"  # row 5
        "a,sad,0.1,,,x\n"  # row 6
        ",sad,0.1,,,x\n"  # row 7
        "d,sad,-0.1,X,English,x\n"  # row 8: three problems
        "e,sad,abc,,,x,extra\n"  # row 9
        "speaker1/take1.mp4,sad,,,,x\n"  # row 10: a path instead of its clip id
        "take2,happy,,,,x\n"  # row 11: a bare file name
        "speaker1__tak1,happy,,,,x\n",  # row 12: a typo
        encoding="utf-8",
    )
    known = {"a", "b", "c", "d", "e", "speaker1__take1", "speaker2__take2-mp4", "speaker2__take2-wav"}
    with pytest.raises(ConfigError) as info:
        read_labels_csv(csv, known)
    message = str(info.value)
    for needle in (
        "13 problems, nothing applied",
        "unknown column 'emotoin'",
        "did you mean 'emotion'?",
        "row 3: unknown clip_id 'ghost' (not among the clips found)",
        "row 4: unknown emotion 'bored' (use one of angry, disgust, fear, happy, neutral, sad, surprise",
        "row 5: intensity '1.5' is not a number in [0, 1]",
        "row 6: clip_id 'a' appears twice (first on row 2)",
        "row 7: empty clip_id",
        "row 8: intensity '-0.1'",
        "row 8: sex 'X' is not M or F",
        "row 8: language 'English' is not a language code",
        "row 9: 7 cells but the header has 6 columns",
        "row 10: unknown clip_id 'speaker1/take1.mp4' (not among the clips found); did you mean 'speaker1__take1'",
        "row 11: unknown clip_id 'take2' (not among the clips found); did you mean 'speaker2__take2-mp4' or "
        "'speaker2__take2-wav'",
        "row 12: unknown clip_id 'speaker1__tak1' (not among the clips found); did you mean 'speaker1__take1'?",
    ):
        assert needle in message, needle
    assert "\n" not in message and message.startswith(str(csv))


def test_labels_csv_file_level_problems(tmp_path: Path) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes("clip_id,speaker\na,Jos\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"not UTF-8 \(line 2, byte 21\); save the CSV as UTF-8"):
        read_labels_csv(latin)
    nocol = tmp_path / "nocol.csv"
    nocol.write_text("id,emotion\na,happy\n")
    with pytest.raises(ConfigError, match=r"no 'clip_id' column \(header: 'id', 'emotion'\)"):
        read_labels_csv(nocol)
    empty = tmp_path / "empty.csv"
    empty.write_text("  \n")
    with pytest.raises(ConfigError, match="empty file"):
        read_labels_csv(empty)
    with pytest.raises(ConfigError, match="cannot read labels CSV"):
        read_labels_csv(tmp_path / "missing.csv")
    twice = tmp_path / "twice.csv"
    twice.write_text("clip_id,emotion,Emotion\na,happy,sad\n")
    with pytest.raises(ConfigError, match="column 'emotion' appears twice"):
        read_labels_csv(twice)


def test_extract_applies_the_csv_and_refreshes_labels_without_re_extracting(shared_data: Path, tmp_path: Path) -> None:
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
    assert (labels["recipe"], labels["emotion"], labels["intensity"], labels["speaker"], labels["view"]) == (
        "mead",
        "happy",
        0.7,
        "mead:W009",
        "front",
    )
    frames_before = (status_file.parent / "frames.parquet").stat().st_mtime_ns
    csv.write_text("clip_id,intensity\nmead_W009_front_happy_level3_001,0.2\n")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0 and "1 skipped" in result.output
    assert json.loads(status_file.read_text())["labels"]["intensity"] == 0.2
    assert (status_file.parent / "frames.parquet").stat().st_mtime_ns == frames_before
    bad = tmp_path / "bad.csv"
    bad.write_text("clip_id,emotion\nnot_a_clip,happy\nmead_W009_front_happy_level3_001,bored\n")
    result = CliRunner().invoke(cli, [*args[:-1], str(bad)])
    assert result.exit_code == 2
    assert "row 2: unknown clip_id 'not_a_clip'" in result.output and "row 3: unknown emotion 'bored'" in result.output
    assert json.loads(status_file.read_text())["labels"]["intensity"] == 0.2  # nothing applied, nothing lost


def test_speaker_rule_is_explicit_and_a_media_folder_is_not_a_speaker() -> None:
    from medtalk_pipelines import media_folder_note
    from medtalk_pipelines.generic import speaker_of

    # 25 people in videos/video/*.mp4 must not become one speaker "video"
    assert labels_for_path("auto")("video/pcavs_input_00002.mp4")["speaker"] is None
    assert labels_for_path("auto")("alice/take1.mp4")["speaker"] == "alice"
    assert labels_for_path("auto", speaker_from="folder")("video/pcavs_input_00002.mp4")["speaker"] == "video"
    assert labels_for_path("auto", speaker_from="file")("interviews/alice_take1.mp4")["speaker"] == "alice"
    assert labels_for_path("auto", speaker_from="none")("alice/take1.mp4")["speaker"] is None
    assert [speaker_of("Raw-Clips/x.mp4"), speaker_of("video_noaudio/x.mp4"), speaker_of("Bob_Smith/x.mp4")] == [
        None,
        None,
        "Bob_Smith",
    ]
    # dataset recipes keep their own speakers whatever the rule
    assert (
        labels_for_path("auto", speaker_from="none")("video_noaudio/mead_W009_front_angry_level3_001.mp4")["speaker"]
        == "mead:W009"
    )
    note = media_folder_note(
        ["video/a.mp4", "video/b.mp4", "alice/c.mp4", "clips/mead_W009_front_angry_level3_001.mp4"]
    )
    assert note is not None and note.startswith("video/ (2 clips)") and "--speaker-from folder" in note
    assert media_folder_note(["video/a.mp4"], speaker_from="folder") is None
    with pytest.raises(ValueError, match="speaker rule 'people'"):
        labels_for_path("auto", speaker_from="people")


def test_extract_warns_about_a_media_folder_and_takes_the_rule_from_the_config(
    shared_data: Path, tmp_path: Path
) -> None:
    videos = tmp_path / "videos" / "video"
    videos.mkdir(parents=True)
    (videos / "pcavs_input_00002.mp4").symlink_to(shared_data / "video" / "pcavs_input_00002.mp4")
    args = ["extract", str(tmp_path / "videos"), "--out", str(tmp_path / "out"), "--stages", "audio", "--no-progress"]
    result = CliRunner().invoke(data_cli, args)
    assert result.exit_code == 0, result.output
    assert "warning: video/ (1 clips): the folder name says what the files are" in result.output
    status = json.loads((tmp_path / "out" / "clips" / "video__pcavs_input_00002" / "status.json").read_text())
    assert status["labels"]["speaker"] is None
    config = tmp_path / "extract.yaml"
    config.write_text("speaker_from: folder\nstages: [audio]\n")
    result = CliRunner().invoke(data_cli, ["extract", str(tmp_path / "videos"), "--out", str(tmp_path / "out"),
                                           "--config", str(config), "--no-progress"])  # fmt: skip
    assert result.exit_code == 0 and "folder name says" not in result.output, result.output
    status = json.loads((tmp_path / "out" / "clips" / "video__pcavs_input_00002" / "status.json").read_text())
    assert status["labels"]["speaker"] == "video" and "skipped" in result.output  # labels refreshed, nothing redone
