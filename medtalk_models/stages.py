"""The four MEDTalk training stages: what each reads, what it trains, and its losses.

Losses follow the official code (medtalk-spec §2): plain MSE on rig vectors, cosine terms on the
latent codes flattened over the whole sequence (here: per window), the intensity term on
``Int(x) = scale · Σ|x|`` over the rig's intensity channels. Differences from the official code
are listed in the README ("Where we differ from the official code").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .data import PairSampler, TrainingData
from .model import MEDTalk
from .recognise import classifier_channels, floored_spread
from .rig import RigSpec


def flat_cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine of two (B, T, D) codes flattened per sample over time (official: over the whole clip)."""
    return F.cosine_similarity(a.reshape(len(a), -1).float(), b.reshape(len(b), -1).float(), dim=1).mean()


MOTION_FLOOR_SHARE = 0.25  # of the median channel's training std: less motion than this counts as none


def window_concordance(pred: torch.Tensor, x: torch.Tensor, min_std: float = 1e-4) -> torch.Tensor:
    """Lin's concordance correlation over time between predicted and true curves (B, T, C), averaged over
    the channels that move in each window: 1 only when the prediction follows the truth frame by frame
    with the same mean and the same amount of motion (a correlation alone would accept a mouth that
    hardly moves)."""
    p, t = pred.float(), x.float()
    dp, dt = p - p.mean(1, keepdim=True), t - t.mean(1, keepdim=True)
    moving = dt.pow(2).mean(1).sqrt() > min_std  # (B, C)
    ccc = 2 * (dp * dt).mean(1) / (dp.pow(2).mean(1) + dt.pow(2).mean(1) + (p.mean(1) - t.mean(1)).pow(2) + 1e-8)
    if not moving.any():
        return ccc.new_zeros(())
    return ccc[moving].mean()


def rig_intensity(x: torch.Tensor, idx: torch.Tensor, scale: float) -> torch.Tensor:
    return scale * x.index_select(-1, idx).abs().sum(-1, keepdim=True)


@dataclass
class StageSpec:
    name: str
    needs: frozenset[str]
    phases: tuple[str, ...]

    def epochs(self, cfg: dict[str, Any]) -> int:
        section = cfg["stages"][self.name]
        return int(section["epochs_per_phase"] if self.name == "disentangle" else section["epochs"])


STAGES: dict[str, StageSpec] = {
    "disentangle": StageSpec("disentangle", frozenset(), ("self", "content", "emotion", "cycle")),
    "audio_content": StageSpec("audio_content", frozenset({"audio"}), ("train",)),
    "intensity": StageSpec("intensity", frozenset({"audio", "label", "text"}), ("train",)),
    "emotion_control": StageSpec(
        "emotion_control", frozenset({"audio", "label", "text", "image", "descriptions"}), ("train",)
    ),
}
STAGE_ORDER = tuple(STAGES)


def stage_phases(name: str, cfg: dict[str, Any]) -> tuple[str, ...]:
    return tuple(cfg["stages"]["disentangle"]["phases"]) if name == "disentangle" else ("train",)


class StageLoss:
    """Computes one stage's training and validation losses on batches from :class:`TrainingData`."""

    def __init__(
        self,
        name: str,
        model: MEDTalk,
        rig: RigSpec,
        cfg: dict[str, Any],
        device: torch.device,
        channel_std: np.ndarray | None = None,
        displacement_spread: np.ndarray | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.cfg = cfg
        self.section = cfg["stages"][name]
        self.device = device
        # stage 2 with channel_weighting "variance": each channel's error in units of its training std, so a
        # small channel (jawOpen) counts as much as a large one (a blink). Stds are floored at a quarter of
        # the median channel's, so channels that hardly move (noise) do not dominate; the same floor
        # decides which channels of a window move enough for the concordance term.
        std = np.ones(rig.dim)
        self.motion_floor = 1e-4
        if channel_std is not None and len(channel_std):
            self.motion_floor = max(MOTION_FLOOR_SHARE * float(np.median(channel_std)), 1e-4)
            if self.section.get("channel_weighting") == "variance":
                std = np.maximum(np.asarray(channel_std, np.float64), self.motion_floor)
        self.channel_weight = torch.tensor(1.0 / std**2, dtype=torch.float32, device=device)
        self.mouth = torch.tensor(rig.indices("mouth"), dtype=torch.long, device=device)
        self.upper = torch.tensor(rig.indices("upper"), dtype=torch.long, device=device)
        self.intensity_idx = torch.tensor(rig.indices("intensity"), dtype=torch.long, device=device)
        self.emotion_idx = torch.tensor(classifier_channels(rig), dtype=torch.long, device=device)
        emotions = list(cfg["model"]["emotions"])
        self.neutral = emotions.index("neutral") if "neutral" in emotions else -1
        # the displacement term counts each emotion channel in units of its spread over the training clips, floored
        # as the emotion classifier floors it (recognise.floored_spread)
        unit = np.ones(len(self.emotion_idx))
        if displacement_spread is not None:
            unit = floored_spread(np.asarray(displacement_spread, np.float64)[self.emotion_idx.cpu().numpy()])
        self.displacement_unit = torch.tensor(unit, dtype=torch.float32, device=device)

    def _mse(self, pred: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Mean squared error over frames and channels, each channel weighted (1 without channel_weighting)."""
        return (((pred.float() - x.float()) ** 2) * self.channel_weight).mean()

    # -- stage 1 ------------------------------------------------------------------------------
    def disentangle(self, phase: str, tensors: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        m = self.model
        enc_e, enc_c = m.emotion_code, m.cont_encoder
        if phase == "self":
            (x,) = tensors
            loss = self._mse(m.reconstruct(x), x)
            return {"loss": loss, "self": loss}
        if phase == "cycle":
            a, b = tensors
            ab = m.decode(enc_e(a), enc_c(b))
            ba = m.decode(enc_e(b), enc_c(a))
            a_hat = m.decode(enc_e(ab), enc_c(ba))
            b_hat = m.decode(enc_e(ba), enc_c(ab))
            loss = self._mse(a_hat, a) + self._mse(b_hat, b)
            return {"loss": loss, "cycle": loss}
        p, q = tensors
        ep, cp, eq, cq = enc_e(p), enc_c(p), enc_e(q), enc_c(q)
        self_terms = self._mse(m.decode(ep, cp), p) + self._mse(m.decode(eq, cq), q)
        if phase == "content":  # same sentence, two emotions: swapping content must change nothing
            swap = self._mse(m.decode(ep, cq), p) + self._mse(m.decode(eq, cp), q)
        else:  # "emotion": same emotion, two sentences: swapping emotion must change nothing
            swap = self._mse(m.decode(ep, cq), q) + self._mse(m.decode(eq, cp), p)
        return {"loss": self_terms + swap, "self": self_terms, "swap": swap}

    # -- stages 2-4 ---------------------------------------------------------------------------
    def audio_content(self, batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        m, x = self.model, batch["x"]
        with torch.no_grad():
            e_gt, c_gt = m.emotion_code(x), m.cont_encoder(x)
        noise = float(self.section.get("feature_noise", 0.0))
        codes = m.member_codes(batch["content"], noise_std=noise)  # (K, B, T, latent)
        k = len(codes)  # several content maps: each learns on its own loss, the K copies batched as one
        z_c = codes.reshape(-1, *codes.shape[2:])
        x_k, e_k, c_k, feats_k = (t.repeat(k, *([1] * (t.dim() - 1))) for t in (x, e_gt, c_gt, batch["content"]))
        x_hat = m.with_lips(m.decode(e_k, z_c), feats_k, noise_std=noise)
        rec = self._mse(x_hat, x_k)
        cos = 1 - flat_cos(z_c, c_k)
        ccc = 1 - window_concordance(x_hat, x_k, self.motion_floor)
        loss = rec + self.section["cos_weight"] * cos + float(self.section.get("concordance_weight", 0.0)) * ccc
        terms = {"rec": rec, "cos": cos, "ccc": ccc}
        if float(self.section.get("tune_decoder", 0.0)) > 0:
            # the decoder learns too: its stage-1 self-reconstruction stays a term, so Ee/Ec codes still decode
            anchor = self._mse(m.decode(e_gt, c_gt), x)
            loss = loss + float(self.section.get("decoder_anchor_weight", 1.0)) * anchor
            terms["anchor"] = anchor
        if k > 1:  # what animate decodes: the members' mean code
            with torch.no_grad():
                x_hat = m.with_lips(m.decode(e_gt, codes.mean(0)), batch["content"])
        return {"loss": loss, **terms}, x_hat

    def _content(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The content code each sample is decoded with (no gradient: stages 3-4 train emotion only): from
        the audio where the clip has audio, else the clip's own Ec(x) (a video-only labelled clip), with its
        static expression taken out first under data.video_only_content: neutralised."""
        m = self.model
        with torch.no_grad():
            from_audio = m.audio_content_map(batch["content"])
            has_audio = batch["has_audio"]
            if bool(has_audio.all()):
                return from_audio
            x = batch["x"]
            if "emotion_offset" in batch:  # data.video_only_content: neutralised (see TrainingData._emotion_offsets)
                x = x - batch["emotion_offset"][:, None, :].to(x.dtype)
            return torch.where(has_audio[:, None, None], from_audio, m.cont_encoder(x))

    def _decoder_inputs(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Stages 3-4: each sample's content code (see :meth:`_content`) and, where the model has one, the
        stage-2 mouth residual (frozen; zero for clips without audio), so they decode as animate does."""
        m = self.model
        content = self._content(batch)
        if m.lip_residual is None:
            return content, None
        with torch.no_grad():
            zeros = torch.zeros(*content.shape[:2], m.dims.rig_dim, dtype=content.dtype, device=content.device)
            lips = m.with_lips(zeros, batch["content"]) * batch["has_audio"][:, None, None]
        return content, lips

    def _decode(self, z_e: torch.Tensor, content: torch.Tensor, lips: torch.Tensor | None) -> torch.Tensor:
        out = self.model.decode(z_e, content)
        return out if lips is None else out + lips

    def _intensity(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Frame-wise intensity (B, T, 1): the audio + text predictor where the clip has audio, else the
        clip's own ground truth Int(x) (the predictor cannot hear a video-only clip, and is not trained on it)."""
        predicted = self.model.intensity(batch["emotion"], batch["text"], batch["text_pad"])
        has_audio = batch["has_audio"]
        if bool(has_audio.all()):
            return predicted
        return torch.where(has_audio[:, None, None], predicted, self._true_intensity(batch).to(predicted.dtype))

    def _true_intensity(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        scale = self.cfg["stages"]["intensity"]["intensity_scale"]
        return rig_intensity(batch["x"].float(), self.intensity_idx, scale)

    def intensity(self, batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        m, x, s = self.model, batch["x"], self.section
        with torch.no_grad():
            e_gt = m.emotion_code(x)
        predicted = self._intensity(batch)
        z_e = m.label_emotion(batch["label"], predicted)
        content, lips = self._decoder_inputs(batch)
        x_hat = self._decode(z_e, content, lips)
        rec = F.mse_loss(x_hat, x)
        cos = 1 - flat_cos(z_e, e_gt)
        scale = s["intensity_scale"]
        inten = F.mse_loss(rig_intensity(x_hat, self.intensity_idx, scale), rig_intensity(x, self.intensity_idx, scale))
        loss = rec + s["cos_weight"] * cos + s["intensity_weight"] * inten
        terms = {"rec": rec, "cos": cos, "intensity": inten}
        fit_weight = float(s.get("intensity_fit_weight", 0.0))
        heard = batch["has_audio"]
        if fit_weight > 0 and bool(heard.any()):
            # the predictor's output on the scale of Int(x), which video-only clips train the labels with
            fit = F.mse_loss(predicted[heard].float(), self._true_intensity(batch)[heard])
            loss = loss + fit_weight * fit
            terms["intensity_fit"] = fit
        displacement_weight = float(s.get("displacement_weight", 0.0))
        if displacement_weight > 0 and "displaced" in batch:
            (moved,) = self._displacement_errors(batch, predicted, (x_hat,), content, lips)
            loss = loss + displacement_weight * moved
            terms["displacement"] = moved
        return {"loss": loss, **terms}, x_hat

    def _displacement_errors(self, batch, intensity, faces, content, lips) -> list[torch.Tensor]:
        """For each decoded face of ``faces``: how far its code moves the face from the neutral label's on the
        same content and intensity (decoded once for all of them),
        against how far the clip's speaker moved from their own neutral clip (``batch["displacement"]``): the
        mean squared error over the emotion-region channels, each in units of its spread, on the non-neutral
        clips whose speaker has a neutral clip (0 in a batch without one, so every batch logs the same terms,
        as DDP's averaging of them needs).

        Not in the paper (README "Where we differ"): reconstruction alone lets the content path carry part of a
        clip's expression, so on new speech a label moved the face 0.4-0.5x as far as real faces move (issue 13);
        this term asks the code for the whole move."""
        m = self.model
        shown = batch["displaced"] & (batch["label"] != self.neutral)
        if self.neutral < 0 or not bool(shown.any()):
            return [face.new_zeros((), dtype=torch.float32) for face in faces]
        pick = torch.nonzero(shown).squeeze(1)
        neutral = torch.full_like(batch["label"][pick], self.neutral)
        lips = None if lips is None else lips[pick]
        calm = self._decode(m.label_emotion(neutral, intensity[pick]), content[pick], lips)
        target = batch["displacement"][pick].float().index_select(-1, self.emotion_idx)
        errors = []
        for face in faces:
            moved = (face[pick] - calm).float().mean(1).index_select(-1, self.emotion_idx)
            errors.append((((moved - target) / self.displacement_unit) ** 2).mean())
        return errors

    def emotion_control(self, batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Stage 4. The frame-wise intensity comes from the stage-3 predictor, frozen (the official
        stage 4 loads an untrained audio-only predictor instead: gap G6 of the spec); a video-only
        clip uses its own Int(x) and Ec(x)."""
        m, x = self.model, batch["x"]
        with torch.no_grad():
            e_gt = m.emotion_code(x)
            inten = self._intensity(batch)
        content, lips = self._decoder_inputs(batch)
        z_img = m.image_emotion(batch["image"], inten)
        z_txt = m.text_emotion(batch["sentence"], inten)
        x_img = self._decode(z_img, content, lips)
        x_txt = self._decode(z_txt, content, lips)
        rec_img = F.mse_loss(x_img, x)
        rec_txt = F.mse_loss(x_txt, x)
        cos = 2 - flat_cos(z_img, e_gt) - flat_cos(z_txt, e_gt)
        loss = rec_img + rec_txt + self.section["cos_weight"] * cos
        terms = {"rec_image": rec_img, "rec_text": rec_txt, "cos": cos}
        displacement_weight = float(self.section.get("displacement_weight", 0.0))
        if displacement_weight > 0 and "displaced" in batch:
            errors = self._displacement_errors(batch, inten, (x_img, x_txt), content, lips)
            for kind, moved in zip(("image", "text"), errors, strict=True):
                loss = loss + displacement_weight * moved
                terms[f"displacement_{kind}"] = moved
        return {"loss": loss, **terms}, x_txt

    def batch_loss(self, batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        if self.name == "disentangle":
            x = batch["x"]
            losses = self.disentangle("self", (x,))
            return losses, self.model.reconstruct(x)
        return getattr(self, self.name)(batch)

    def region_errors(self, pred: torch.Tensor, x: torch.Tensor) -> dict[str, float]:
        err = (pred.float() - x.float()).abs()
        return {
            "mouth_mae": float(err.index_select(-1, self.mouth).mean()) if len(self.mouth) else float("nan"),
            "upper_mae": float(err.index_select(-1, self.upper).mean()) if len(self.upper) else float("nan"),
        }


def disentangle_tensors(
    phase: str,
    data: TrainingData,
    pairs: PairSampler | None,
    plan: np.ndarray,
    rng: np.random.Generator,
    device: torch.device,
) -> tuple[torch.Tensor, ...]:
    """The tensors of one stage-1 batch: ``plan`` (windows) fixes the batch size and length."""
    length = int(plan[0, 2])
    if phase == "self":
        arrays: tuple[np.ndarray, ...] = (data.gather(plan)["x"],)
    elif phase == "content":
        assert pairs is not None
        arrays = pairs.content_batch(rng, len(plan), length)
    else:
        assert pairs is not None
        x1, x2 = pairs.two_windows(rng, len(plan), same_emotion=phase == "emotion")
        n = min(x1.shape[1], x2.shape[1])  # whole-clip mode: truncate to the shorter, as the official code
        arrays = (x1[:, :n], x2[:, :n])
    return tuple(torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in arrays)
