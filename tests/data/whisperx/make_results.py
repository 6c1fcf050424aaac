"""Write the WhisperX result files the adapter test reads, with WhisperX's own command line.

Run by hand in WhisperX's own environment (it pins torch ~2.8, so it cannot share medtalk's)::

    python -m venv wx && wx/bin/pip install whisperx==3.8.6 imageio-ffmpeg
    ln -s "$(wx/bin/python -c 'import imageio_ffmpeg as f; print(f.get_ffmpeg_exe())')" wx/bin/ffmpeg
    PATH=wx/bin:$PATH wx/bin/python tests/data/whisperx/make_results.py --work /tmp/wx-work --asr-model TINY_EN
    # and again in a second environment with: whisperx==3.3.1 torch==2.5.1 torchaudio==2.5.1 'transformers<4.48'
    # matplotlib imageio-ffmpeg (3.3.1's pyannote needs a torch before 2.6's weights_only default)

The same environments run our backend end to end: ``MEDTALK_WHISPERX_PYTHON=wx/bin/python pytest
tests/test_words.py -k whisperx`` (with ``wx/bin`` on PATH for its ffmpeg).

Each result is written as ``<clip>.whisperx-<version>.json``.

Nothing is downloaded. The recogniser is the Whisper tiny.en CTranslate2 folder medtalk bundles
(``medtalk-data assets list``, pass it with --asr-model); WhisperX's VAD is the pyannote model its
wheel ships. The aligner is a **randomly initialised** ``Wav2Vec2ForCTC`` (the architecture and
processor files WhisperX loads, with the character vocabulary of the English wav2vec2 CTC models)
because no wav2vec2 weights are on this machine: its word times are meaningless, but everything the
adapter reads — the JSON layout, which words get start/end/score, segments, ``word_segments`` — is
what this WhisperX version writes. nltk's ``punkt_tab`` data (WhisperX's sentence splitter) is not
on PyPI either: an English parameter set without abbreviations is written for it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[2].parent / "shared" / "data"
# result file name -> real speech in ../shared/data (the last two say numbers, which Whisper writes as digits)
CLIPS = {
    "emotalk_ravdess_sad": "audio/emotalk_ravdess_sad.wav",
    "cremad_speakerA_angry": "video_emotional/cremad_speakerA_angry.mp4",
    "pcavs_audio_source_00015": "video/pcavs_audio_source_00015.mp4",
}
LETTERS = "ETAONIHSRDLUMWCFGYPBVK'XJQZ"  # the English wav2vec2 CTC vocabulary, by frequency


def aligner_folder(out: Path) -> Path:
    import torch
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4} | {c: 5 + i for i, c in enumerate(LETTERS)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = Wav2Vec2CTCTokenizer(
        str(out / "vocab.json"), unk_token="<unk>", pad_token="<pad>", word_delimiter_token="|"
    )
    features = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True, return_attention_mask=False
    )
    Wav2Vec2Processor(feature_extractor=features, tokenizer=tokenizer).save_pretrained(out)
    torch.manual_seed(0)
    config = Wav2Vec2Config(
        vocab_size=len(vocab),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        pad_token_id=0,
    )
    Wav2Vec2ForCTC(config).save_pretrained(out)
    return out


def punkt_data(root: Path) -> Path:
    english = root / "tokenizers" / "punkt_tab" / "english"
    english.mkdir(parents=True, exist_ok=True)
    for name in ("collocations.tab", "sent_starters.txt", "abbrev_types.txt", "ortho_context.tab"):
        (english / name).touch()
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--asr-model", type=Path, required=True, help="a CTranslate2 Whisper folder")
    args = parser.parse_args()
    align = aligner_folder(args.work / "wav2vec2_random")
    env = os.environ | {"NLTK_DATA": str(punkt_data(args.work / "nltk_data")), "HF_HUB_OFFLINE": "1"}
    whisperx = Path(sys.executable).with_name("whisperx")
    from importlib.metadata import version

    tag = f"whisperx-{version('whisperx')}"
    for name, audio in CLIPS.items():
        out = args.work / name
        subprocess.run([str(whisperx), str(SHARED / audio), "--model", str(args.asr_model), "--align_model",
                        str(align), "--device", "cpu", "--compute_type", "int8", "--language", "en",
                        "--output_format", "json", "--output_dir", str(out)], check=True, env=env)  # fmt: skip
        (result,) = out.glob("*.json")
        (HERE / f"{name}.{tag}.json").write_text(result.read_text())
        print(HERE / f"{name}.{tag}.json")


if __name__ == "__main__":
    main()
