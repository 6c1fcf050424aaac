"""Every label learns from every labelled clip, the labels a model never saw are said, and generated
emotions are measured by whether a classifier of real faces recognises them."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from medtalk_cli.models import cli
from medtalk_models.checkpoint import load_meta
from medtalk_models.labels import LabelCoverage, untrained_warning
from medtalk_models.recognise import EmotionClassifier, confusion, displacement, from_neutral

from .conftest import small_cfg

EMOTIONS = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]


class _Clip:
    def __init__(self, emotion: int, has_audio: bool, labelled: bool) -> None:
        self.emotion, self.has_audio, self.labelled = emotion, has_audio, labelled


def test_label_table_counts_and_names_the_labels_never_seen() -> None:
    coverage = LabelCoverage(EMOTIONS)
    clips = [_Clip(3, False, True), _Clip(3, True, True), _Clip(4, True, False), _Clip(-1, True, False)]
    coverage.count("intensity", clips, [10, 20, 30, 40])
    happy, neutral = coverage.stages["intensity"]["happy"], coverage.stages["intensity"]["neutral"]
    assert (happy.clips, happy.frames, happy.with_audio, happy.defaulted) == (2, 30, 1, 0)
    assert (neutral.clips, neutral.frames, neutral.defaulted) == (1, 30, 1)
    assert coverage.untrained() == ["angry", "disgust", "fear", "sad", "surprise"]
    assert coverage.warnings()[2] == untrained_warning("fear")
    assert coverage.summary() == "labels learned: happy, neutral; never seen (animate cannot show them): " + ", ".join(
        ["angry", "disgust", "fear", "sad", "surprise"]
    )
    assert "`animate --emotion fear` will not show fear" in untrained_warning("fear")
    table = "\n".join(coverage.table())
    assert "2 (1 with audio) 30" in table and "1 (1 with audio, 1 unlabelled) 30" in table
    again = LabelCoverage.from_dict(json.loads(json.dumps(coverage.to_dict())))
    assert again is not None and again.untrained() == coverage.untrained() and again.table() == coverage.table()


def test_recognisability_measures_by_hand() -> None:
    # generated happy moves (3, 4) from generated neutral; the real faces move (6, 8): half as far, same way
    d = displacement(np.array([4.0, 5.0]), np.array([1.0, 1.0]), np.array([6.0, 8.0]), np.zeros(2))
    assert d["ratio"] == pytest.approx(0.5) and d["cosine"] == pytest.approx(1.0)
    d = displacement(np.array([0.0, 1.0]), np.zeros(2), np.array([1.0, 0.0]), np.zeros(2))
    assert d["ratio"] == pytest.approx(1.0) and d["cosine"] == pytest.approx(0.0)
    assert np.isnan(displacement(np.ones(2), np.zeros(2), np.ones(2), np.ones(2))["ratio"])
    table = confusion(["happy", "happy", "sad"], ["happy", "sad", "sad"], ["happy", "sad"])
    assert table == [[1, 1], [0, 1]]
    moved = from_neutral([("a", "neutral", np.ones(2)), ("a", "happy", np.array([2.0, 3.0])),
                          ("b", "happy", np.zeros(2))])  # fmt: skip
    assert [(label, f.tolist()) for label, f in moved] == [("neutral", [0.0, 0.0]), ("happy", [1.0, 2.0])]
    feats = np.array([[0.0, 0.0], [0.2, 0.0], [1.0, 1.0], [1.2, 1.0]])
    clf = EmotionClassifier.fit(feats, np.array([4, 4, 3, 3]), [5, 7])
    assert clf.predict(np.array([0.9, 0.8])) == 3 and clf.predict(np.array([0.1, 0.2])) == 4
    assert clf.feature(np.arange(16.0).reshape(2, 8)).tolist() == [9.0, 11.0]  # mean of channels 5 and 7
    back = EmotionClassifier.from_arrays(clf.to_arrays())
    assert back.predict(np.array([0.9, 0.8])) == 3 and np.allclose(back.centroid(3), [1.1, 1.0])


def test_a_channel_that_never_moved_does_not_decide_the_emotion() -> None:
    """MediaPipe's noseSneer stays at 0 in every MEAD clip: without a floor under its spread, an animation's 0.001
    flicker there outweighed a clear smile on the other channels (the classifier named every animation at random)."""
    # channel 2 hardly moved while fitting (1e-5 apart); the smile (class 3) is clear on channels 0 and 1
    feats = np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [1.0, 1.0, 1e-5], [1.1, 0.9, 1e-5]])
    clf = EmotionClassifier.fit(feats, np.array([4, 4, 3, 3]), [0, 1, 2])
    smile = np.array([1.0, 1.0, -0.002])  # with a 0.002 flicker the wrong way on channel 2
    assert clf.predict(smile) == 3
    assert clf.scale[2] == pytest.approx(0.1 * np.median(feats.std(0)))
    bare = EmotionClassifier(clf.classes, clf.centroids, feats.std(0) + 1e-6, clf.channels)  # no floor: flicker wins
    assert bare.predict(smile) == 4
    old = clf.to_arrays() | {"scale": feats.std(0) + 1e-6}  # a checkpoint stored before the floor
    assert EmotionClassifier.from_arrays(old).predict(smile) == 3


def test_video_only_labelled_clips_move_their_labels(run_dir: Path) -> None:
    """The small manifest's labelled clips are all MEAD (video only); its clips with audio are unlabelled."""
    meta = load_meta(run_dir / "model")
    stage3 = meta["label_coverage"]["stages"]["intensity"]
    trained = [e for e in EMOTIONS if stage3[e]["clips"]]
    assert {"angry", "happy", "sad", "surprise", "neutral"} >= set(trained) >= {"happy", "sad"}
    assert all(stage3[e]["with_audio"] == 0 for e in trained if e != "neutral")
    assert {"disgust", "fear"} <= set(meta["label_coverage"]["untrained"])
    from safetensors.torch import load_file

    rows_before = load_file(str(run_dir / "audio_content" / "model.safetensors"))["emotion_embedding.0.weight"]
    rows_after = load_file(str(run_dir / "model" / "model.safetensors"))["emotion_embedding.0.weight"]
    moved = (rows_after - rows_before).norm(dim=1)
    for e in trained:
        assert moved[EMOTIONS.index(e)] > 1e-3, e  # a label with clips learns
    for e in ("disgust", "fear"):
        assert moved[EMOTIONS.index(e)] == 0, e  # a label without clips keeps its initial embedding


def test_untrained_labels_are_said_by_animate_train_and_zoo_info(
    run_dir: Path, training_manifest: Path, shared_data: Path, tmp_path: Path
) -> None:
    speech = shared_data / "video" / "pcavs_input_00010.mp4"
    args = ["animate", "-k", str(run_dir), "--audio", str(speech), "--transcript", "hello there", "--out"]
    out = CliRunner().invoke(cli, [*args, str(tmp_path / "fear"), "--emotion", "fear", "--format", "npz"])
    assert out.exit_code == 0, out.output
    assert "label 'fear' was never seen in training" in out.output
    out = CliRunner().invoke(cli, [*args, str(tmp_path / "happy"), "--emotion", "happy", "--format", "npz"])
    assert out.exit_code == 0 and "never seen" not in out.output
    info = CliRunner().invoke(cli, ["zoo", "info", str(run_dir)])
    assert info.exit_code == 0, info.output
    assert "intensity: clips (audio) frames" in info.output
    never = next(line for line in info.output.splitlines() if "never seen (animate cannot show them)" in line)
    assert "disgust" in never and "fear" in never and "happy" not in never.split("never seen")[1]
    trained = CliRunner().invoke(
        cli, ["train", "-m", str(training_manifest), "--out", str(tmp_path / "run"), "--stage", "disentangle",
              "--max-steps", "1"],
    )  # fmt: skip
    assert trained.exit_code == 0 and "labels learned" not in trained.output  # no label stage ran yet


def test_official_path_leaves_video_only_labels_out(training_manifest: Path, tmp_path: Path, caplog) -> None:
    from medtalk_models.config import load_config
    from medtalk_models.train import train

    assert load_config(base="paper")["data"]["labels_without_audio"] is False
    cfg = small_cfg(1, 1)
    cfg["data"]["labels_without_audio"] = False
    with caplog.at_level(logging.WARNING):
        result = train(training_manifest, cfg, tmp_path / "run", "all", progress=False)
    stage3 = load_meta(tmp_path / "run" / "model")["label_coverage"]["stages"]["intensity"]
    assert [e for e in EMOTIONS if stage3[e]["clips"]] == ["neutral"]  # only the (unlabelled) talking clips
    assert result.labels is not None and result.labels.untrained() == [e for e in EMOTIONS if e != "neutral"]
    assert "label 'happy' was never seen in training" in caplog.text


def test_evaluate_reports_recognisability(run_dir: Path, training_manifest: Path, tmp_path: Path) -> None:
    from medtalk_models.evaluate import evaluate, markdown_table

    report = evaluate(run_dir, training_manifest, "all", "cpu", emotion_speech=2)
    rec = report["recognisability"]
    assert len(rec["speech_clips"]) == 2
    known = rec["labels_known_to_classifier"]
    assert {"happy", "sad", "neutral"} <= set(known)
    asked = [k for k in known if k not in rec["untrained_labels"] and k != "neutral"]
    assert list(rec["generated"]) == asked and set(rec["generated"].values()) <= set(known)
    assert sum(map(sum, rec["generated_confusion"]["rows"])) == len(asked)
    assert rec["real_clips"] >= 1 and 0 <= rec["real_accuracy"] <= 1  # the MEAD clips, referenced to their neutral
    assert set(rec["displacement"]) == set(asked)
    assert all(np.isfinite(d["ratio"]) and -1 <= d["cosine"] <= 1 for d in rec["displacement"].values())
    assert {c["named"] for c in rec["text_control"]["cases"]} <= set(known)
    cases = rec["image_control"]["cases"]
    assert cases and rec["image_control"]["correct"].endswith(f"of {len(cases)}")
    assert report["label_coverage"]["untrained"] == rec["untrained_labels"]
    text = markdown_table(report)
    assert "Emotion recognisability" in text and "| happy |" in text and "Labels the model trained on" in text


def test_video_only_content_leaves_the_static_expression_to_the_label(training_manifest: Path) -> None:
    """data.video_only_content: neutralised — a MEAD clip's content code sees its own motion, but the pose of
    its speaker's neutral clip, so the label's code must carry the smile; clips with audio are untouched."""
    from medtalk_data.manifest import load_manifest
    from medtalk_models.data import TrainingData, manifest_rig

    cfg = small_cfg()
    assert cfg["data"]["video_only_content"] == "neutralised"
    manifest = load_manifest(training_manifest)
    data = TrainingData(manifest, manifest_rig(manifest, cfg), cfg, None, {"label"}, optional_audio=True)
    by_id = {c.clip_id: i for i, c in enumerate(data.clips)}

    def mean(clip_id: str) -> np.ndarray:
        c = data.clips[by_id[clip_id]]
        rows = slice(c.start, c.start + c.length)
        return data.curves[rows][data.valid[rows]].mean(0)

    happy, neutral = "mead_W009_front_happy_level3_001", "mead_W009_front_neutral_level1_001"
    assert np.allclose(data.emotion_offset[by_id[happy]], mean(happy) - mean(neutral), atol=1e-5)
    assert np.allclose(data.emotion_offset[by_id[neutral]], 0, atol=1e-6)
    assert all(not data.emotion_offset[i].any() for i, c in enumerate(data.clips) if c.has_audio)
    cfg["data"]["video_only_content"] = "own"
    assert TrainingData(manifest, data.rig, cfg, None, {"label"}, optional_audio=True).emotion_offset is None
    # the displacement term's targets: each labelled clip's move from its own speaker's neutral clip, audio or not
    moves, known = data.displacement
    assert np.allclose(moves[by_id[happy]], mean(happy) - mean(neutral), atol=1e-5) and known[by_id[happy]]
    assert np.allclose(moves[by_id[neutral]], 0, atol=1e-6) and known[by_id[neutral]]
    assert not any(known[i] for i, c in enumerate(data.clips) if not c.labelled)  # talking clips: no reference
    spread = data.displacement_spread()
    assert spread is not None and np.allclose(spread, moves[known].std(0))


def test_left_out_dataset_labels_train_no_label_and_no_classifier(training_manifest: Path) -> None:
    """data.labels_left_out names dataset labels (emotion_raw; the small preset: MEAD's contempt) whose clips the
    label stages and the emotion classifier leave out, saying why; stage 1 keeps them."""
    from medtalk_data.manifest import load_manifest
    from medtalk_models.data import TrainingData, manifest_rig
    from medtalk_models.recognise import fit_emotion_classifier

    cfg = small_cfg()
    assert cfg["data"]["labels_left_out"] == ["contempt"]
    cfg["data"]["labels_left_out"] = ["Sad"]  # the MEAD recipe's raw label is "sad"; case does not matter
    manifest = load_manifest(training_manifest)
    rig = manifest_rig(manifest, cfg)
    sad = {r.clip_id for r in manifest.rows(None) if r.emotion_raw == "sad"}
    assert sad
    label_stage = TrainingData(manifest, rig, cfg, None, {"label"}, optional_audio=True)
    assert sad.isdisjoint(c.clip_id for c in label_stage.clips)
    assert all("data.labels_left_out" in label_stage.excluded[c] for c in sad)
    every = TrainingData(manifest, rig, cfg, None, set())
    kept = [c for c in every.clips if c.clip_id in sad]
    assert kept and not any(c.labelled for c in kept)  # stage 1 still has them, as unlabelled
    clf = fit_emotion_classifier(every, rig.indices("emotion"))
    assert clf is not None and EMOTIONS.index("sad") not in clf.classes and EMOTIONS.index("happy") in clf.classes


def test_the_displacement_term_moves_labels_the_way_and_as_far_as_real_faces(
    run_dir: Path, training_manifest: Path, tmp_path: Path
) -> None:
    """stages.intensity.displacement_weight (small preset): animated on speech, each label should move the face
    from the neutral animation as the training speakers moved from their own neutral clip. The same stage 3
    without the term (the official losses) is the comparison, judged by evaluate's displacement figures."""
    import shutil

    from medtalk_models.evaluate import evaluate
    from medtalk_models.train import train

    cfg = small_cfg(label_epochs=15)
    assert cfg["stages"]["intensity"]["displacement_weight"] > 0
    cfg["stages"]["intensity"]["displacement_weight"] = 0.0
    plain = tmp_path / "plain"
    plain.mkdir()
    for part in ("disentangle", "audio_content", "rig.json", "config.yaml"):
        (shutil.copytree if (run_dir / part).is_dir() else shutil.copy)(run_dir / part, plain / part)
    train(training_manifest, cfg, plain, "intensity", progress=False)

    def figures(run: Path) -> tuple[float, float]:
        moved = evaluate(run, training_manifest, "all", "cpu", emotion_speech=2)["recognisability"]["displacement"]
        cosines = [d["cosine"] for d in moved.values()]
        off = [abs(np.log(d["ratio"])) for d in moved.values()]  # 0 = as far as real faces
        return float(np.mean(cosines)), float(np.mean(off))

    (cos_with, off_with), (cos_without, off_without) = figures(run_dir), figures(plain)
    print(
        f"displacement term: cosine {cos_without:.2f} -> {cos_with:.2f}, "
        f"|log ratio| {off_without:.2f} -> {off_with:.2f}"
    )
    assert cos_with > cos_without + 0.05
    assert off_with < off_without
