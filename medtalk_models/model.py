"""The MEDTalk network, rig-agnostic: per-frame encoders/decoder, audio content map, intensity
fusion, label embedding and the image/text emotion maps.

Module and parameter names follow the official code (``emo_encoder.fc1``, ``emotion_embedding.0``,
``fusion_predictor.cross_attn`` …) so that its state dicts map onto ours by name. Emotion code
first, content second in the decoder input, as the official ``decode``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ModelDims:
    """Sizes that come from the rig and the chosen backbones, stored in every checkpoint."""

    rig_dim: int
    content_feat_dim: int  # audio content features per frame
    emotion_feat_dim: int  # audio emotion features per frame
    text_token_dim: int  # transcript token features
    sentence_dim: int  # description sentence embedding
    image_dim: int  # reference-image features
    hidden_dim: int = 256
    latent_dim: int = 256
    n_emotions: int = 7
    label_hidden: int = 512
    fusion_dim: int = 256
    fusion_heads: int = 8
    fusion_dropout: float = 0.1
    audio_conv_kernel: int = 0
    emotion_pooling: str = "frame"  # "frame" (official) or "window": the emotion code is averaged over time
    audio_hidden_dim: int | None = None  # width of the audio content map (None: hidden_dim, as the official code)
    audio_input_norm: bool = False  # normalise each feature frame (LayerNorm without parameters) before the map
    audio_dropout: float = 0.0  # dropout inside the audio content map (training only)
    lip_residual: tuple[int, ...] = ()  # rig channels a direct audio→rig map adds to (see MEDTalk.with_lips); () = none
    audio_members: int = 1  # audio content maps trained side by side, their codes averaged (1 = official)

    def to_dict(self) -> dict:
        return asdict(self)


class MLP(nn.Module):
    """Linear → ReLU → Linear: every per-frame map of MEDTalk (official ``Encoder``/``Decoder``)."""

    def __init__(self, d_in: int, d_hidden: int, d_out: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_in, d_hidden)
        self.fc2 = nn.Linear(d_hidden, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


class AudioContentMap(nn.Module):
    """Audio features → content latent. Optional temporal convolutions in front (context of a few
    frames, which a per-frame map lacks); otherwise per frame, as the official code.

    ``input_norm`` normalises each feature frame (LayerNorm without parameters: no weights, so the
    official state dict still maps onto ours); ``noise_std`` adds Gaussian noise to the normalised
    features while training (augmentation: the model sees few speakers)."""

    def __init__(
        self, d_in: int, d_hidden: int, d_out: int, conv_kernel: int = 0, input_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:  # fmt: skip
        super().__init__()
        self.input_norm = nn.LayerNorm(d_in, elementwise_affine=False) if input_norm else None
        self.conv: nn.Module | None = None
        if conv_kernel > 0:
            pad = conv_kernel // 2
            self.conv = nn.Sequential(
                nn.Conv1d(d_in, d_hidden, conv_kernel, padding=pad, padding_mode="replicate"),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Conv1d(d_hidden, d_hidden, conv_kernel, padding=pad, padding_mode="replicate"),
                nn.ReLU(),
            )
            d_in = d_hidden
        self.dropout = nn.Dropout(dropout)
        self.fc1 = nn.Linear(d_in, d_hidden)
        self.fc2 = nn.Linear(d_hidden, d_out)

    def forward(self, feats: torch.Tensor, noise_std: float = 0.0) -> torch.Tensor:
        if self.input_norm is not None:
            feats = self.input_norm(feats)
        if noise_std > 0 and self.training:
            feats = feats + noise_std * torch.randn_like(feats)
        if self.conv is not None:
            feats = self.conv(feats.transpose(1, 2)).transpose(1, 2)
        return self.fc2(torch.relu(self.fc1(self.dropout(feats))))


class AudioContentEnsemble(nn.Module):
    """Several audio content maps of one shape, each trained on its own loss from its own initialisation;
    the content code is their mean.

    Not in the paper (README "Where we differ"): on a few minutes of speech one map's errors on an unseen
    speaker are largely its own (initialisation, dropout, noise); averaging independently trained maps
    cancels that part, which no single wider or more regularised map did (issue 12)."""

    def __init__(self, count: int, build) -> None:
        super().__init__()
        self.members = nn.ModuleList(build() for _ in range(count))

    def each(self, feats: torch.Tensor, noise_std: float = 0.0) -> torch.Tensor:
        """(K, B, T, latent): every member's code, for training each on its own loss."""
        return torch.stack([member(feats, noise_std=noise_std) for member in self.members])

    def forward(self, feats: torch.Tensor, noise_std: float = 0.0) -> torch.Tensor:
        return self.each(feats, noise_std).mean(0)


class IntensityFusion(nn.Module):
    """Frame-wise intensity from audio emotion features (queries) attending to transcript tokens
    (keys/values): the official post-LN cross-attention block with a linear head. Projections in
    front make the backbone widths free (the official code needs all three at 768)."""

    def __init__(self, d_audio: int, d_text: int, d_model: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.q_proj = nn.Linear(d_audio, d_model) if d_audio != d_model else nn.Identity()
        self.kv_proj = nn.Linear(d_text, d_model) if d_text != d_model else nn.Identity()
        self.cross_attn = nn.MultiheadAttention(d_model, heads, dropout=dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(d_model)
        self.linear = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.predictor = nn.Linear(d_model, 1)

    def forward(self, audio: torch.Tensor, text: torch.Tensor, text_pad: torch.Tensor | None = None) -> torch.Tensor:
        q = self.q_proj(audio)
        kv = self.kv_proj(text)
        attn, _ = self.cross_attn(q, kv, kv, key_padding_mask=text_pad, need_weights=False)
        h = self.norm1(q + attn)
        h = self.norm2(h + self.dropout(self.linear(h)))
        return self.predictor(h)  # (B, T, 1), unbounded as in the official code


def rescale(direction: torch.Tensor, intensity: torch.Tensor) -> torch.Tensor:
    """Replace the norm of a static emotion vector (B, L) by the frame-wise intensity (B, T, 1).

    The official code multiplies (1, L) by (1, T, 1), which only broadcasts right for batch 1;
    the explicit unsqueeze makes batches correct."""
    unit = direction / (direction.norm(dim=-1, keepdim=True) + 1e-8)
    return intensity * unit.unsqueeze(1)


class MEDTalk(nn.Module):
    """All trainable parts of MEDTalk; frozen backbones (audio/text/image encoders) live outside."""

    def __init__(self, dims: ModelDims) -> None:
        super().__init__()
        self.dims = dims
        c, h, z = dims.rig_dim, dims.hidden_dim, dims.latent_dim
        self.emo_encoder = MLP(c, h, z)
        self.cont_encoder = MLP(c, h, z)
        self.decoder = MLP(2 * z, h, c)

        def content_map() -> AudioContentMap:
            return AudioContentMap(
                dims.content_feat_dim, dims.audio_hidden_dim or h, z, dims.audio_conv_kernel, dims.audio_input_norm,
                dims.audio_dropout,
            )  # fmt: skip

        self.audio_content_map: AudioContentMap | AudioContentEnsemble = (
            content_map() if dims.audio_members <= 1 else AudioContentEnsemble(dims.audio_members, content_map)
        )
        self.fusion_predictor = IntensityFusion(
            dims.emotion_feat_dim, dims.text_token_dim, dims.fusion_dim, dims.fusion_heads, dims.fusion_dropout
        )
        self.emotion_embedding = nn.Sequential(
            nn.Embedding(dims.n_emotions, z),
            nn.Linear(z, dims.label_hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(dims.label_hidden, z),
        )
        self.semantic_emotion_map = MLP(z, h, z)
        self.image_map = MLP(dims.image_dim, h, z)
        self.text_map = MLP(dims.sentence_dim, h, z)
        self.control_emotion_map = MLP(z, h, z)
        self.lip_residual: AudioContentMap | None = None
        if dims.lip_residual:
            self.lip_residual = AudioContentMap(
                dims.content_feat_dim, dims.audio_hidden_dim or h, len(dims.lip_residual), dims.audio_conv_kernel,
                dims.audio_input_norm, dims.audio_dropout,
            )  # fmt: skip

    # -- the pieces -------------------------------------------------------------------------
    def decode(self, emotion: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.cat((emotion, content), dim=-1))

    def with_lips(self, out: torch.Tensor, feats: torch.Tensor, noise_std: float = 0.0) -> torch.Tensor:
        """``out`` (B, T, C) plus the direct audio→mouth residual where the model has one.

        Not in the paper: through the frozen stage-1 decoder the audio content code of an unseen
        speaker moves the mouth less faithfully than a ridge map on the same features (issue 12); a
        second audio map trained with the content map in stage 2 adds what the decoder misses, on
        the mouth channels only, so the upper face stays the emotion code's."""
        if self.lip_residual is None:
            return out
        residual = self.lip_residual(feats, noise_std=noise_std).to(out.dtype)
        index = torch.as_tensor(self.dims.lip_residual, dtype=torch.long, device=out.device)
        return out.index_add(-1, index, residual)

    def member_codes(self, feats: torch.Tensor, noise_std: float = 0.0) -> torch.Tensor:
        """(K, B, T, latent): the content code of every audio content map (K = 1 for a single map)."""
        if isinstance(self.audio_content_map, AudioContentEnsemble):
            return self.audio_content_map.each(feats, noise_std)
        return self.audio_content_map(feats, noise_std=noise_std)[None]

    def emotion_code(self, x: torch.Tensor) -> torch.Tensor:
        """Ee of a rig sequence (B, T, C). With ``emotion_pooling: window`` the per-frame codes are
        averaged over the sequence: an emotion holds for seconds, so whatever changes frame by frame
        (the mouth's phonemes) cannot pass through the emotion code."""
        code = self.emo_encoder(x)
        if self.dims.emotion_pooling == "window":
            code = code.mean(dim=1, keepdim=True).expand_as(code)
        return code

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.emotion_code(x), self.cont_encoder(x))

    def intensity(self, emotion_feats: torch.Tensor, text: torch.Tensor, text_pad: torch.Tensor | None = None):
        return self.fusion_predictor(emotion_feats, text, text_pad)

    def label_emotion(self, labels: torch.Tensor, intensity: torch.Tensor) -> torch.Tensor:
        """(B,) label ids + (B, T, 1) intensity → (B, T, latent) emotion code (stage 3 path)."""
        return self.semantic_emotion_map(rescale(self.emotion_embedding(labels), intensity))

    def mixed_label_emotion(self, weights: torch.Tensor, intensity: torch.Tensor) -> torch.Tensor:
        """A blend of labels: (B, n_emotions) weights over the label embeddings (used by animate)."""
        table = self.emotion_embedding(torch.arange(self.dims.n_emotions, device=weights.device))
        return self.semantic_emotion_map(rescale(weights @ table, intensity))

    def image_emotion(self, image_feat: torch.Tensor, intensity: torch.Tensor) -> torch.Tensor:
        return self.control_emotion_map(rescale(self.image_map(image_feat), intensity))

    def text_emotion(self, sentence: torch.Tensor, intensity: torch.Tensor) -> torch.Tensor:
        return self.control_emotion_map(rescale(self.text_map(sentence), intensity))


# Which modules each stage trains; everything else is frozen during that stage.
STAGE_MODULES: dict[str, tuple[str, ...]] = {
    "disentangle": ("emo_encoder", "cont_encoder", "decoder"),
    "audio_content": ("audio_content_map", "lip_residual"),
    "intensity": ("fusion_predictor", "emotion_embedding", "semantic_emotion_map"),
    "emotion_control": ("image_map", "text_map", "control_emotion_map"),
}


def trainable_parameters(model: MEDTalk, stage: str, also: tuple[str, ...] = ()) -> list[nn.Parameter]:
    """Freeze everything but the stage's modules (and the modules named in ``also``); return their parameters."""
    names = (*STAGE_MODULES[stage], *also)
    params: list[nn.Parameter] = []
    for name, module in model.named_children():
        train = name in names
        for p in module.parameters():
            p.requires_grad_(train)
            if train:
                params.append(p)
    return params
