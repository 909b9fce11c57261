"""Modality adversarial learning (MAL), paper Eq. (4)-(5), section 3.3.

A modality classifier M (audio = 0, text = 1) sits behind a gradient reversal layer (GRL):
M minimises its cross-entropy while the encoders, receiving the reversed gradient, maximise it,
which is the minimax of Eq. (5) written as one minimised objective L_emb + lambda_adv * L_adv.
One M is shared by the utterance level (E_a^utt, E_t^utt) and the phoneme level (the N*
flattened rows of E^_a, E^_t); the caller switches each level (``mal_utt``, ``mal_phn``) and
applies lambda_adv. M is training-only: the exporter keeps only ``audio.``/``text.`` weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from pyadml.losses.precision import fp32_loss

AUDIO_LABEL = 0
TEXT_LABEL = 1
REDUCTIONS = ("sum", "mean")
_ALIASES = {"modality_sum": "sum"}  # the name before issue 13


class GradientReversal(torch.autograd.Function):
    """Identity forward; backward multiplies the incoming gradient by -scale."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = float(scale)
        return x.view_as(x)  # a view, not x itself, so autograd records this node

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad * (-ctx.scale), None


def grad_reverse(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """GRL: y = x forward, dL/dx = -scale * dL/dy backward."""
    return GradientReversal.apply(x, scale)


class ModalityClassifier(nn.Module):
    """M: Linear(d -> hidden) + ReLU + Linear(hidden -> classes); logits over (audio, text), or
    over the training speakers for SpeakerAdversarialLoss."""

    training_only = True

    def __init__(self, d: int = 256, hidden: int = 256, classes: int = 2):
        super().__init__()
        self.d = int(d)
        self.hidden = int(hidden)
        self.net = nn.Sequential(nn.Linear(self.d, self.hidden), nn.ReLU(),
                                 nn.Linear(self.hidden, int(classes)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ModalityAdversarialLoss(nn.Module):
    """L_adv (Eq. 4): L = -(1/n) sum_i log M(GRL(a_i))_audio - (1/m) sum_k log M(GRL(t_k))_text,
    the two modalities' mean cross-entropies added (``reduction="sum"``, the default).

    The GRL (gradient times -grl_scale, Eq. 5) is applied here, so the classifier learns to
    separate the modalities while the encoders learn to confuse it.

    Args:
        classifier: the shared M (one instance for both levels).
        grl_scale: the GRL factor; 1.0 as in the paper. lambda_adv is applied by the caller.
        reduction: "sum" (default, Eq. 4: the per-modality mean cross-entropies added) or
            "mean" (averaged over all n + m rows: half of "sum" when n == m, the behaviour before
            issue 13). "modality_sum" is accepted for "sum".
        normalize: L2-normalise the rows before M; they are compared by cosine everywhere else.

    forward(audio_emb (n, d), text_emb (m, d)) -> (loss, accuracy): accuracy is M's fraction of
    correctly classified rows (a python float for logging; near 0.5 = modality-invariant).
    """

    training_only = True

    def __init__(self, classifier: ModalityClassifier, grl_scale: float = 1.0,
                 reduction: str = "sum", normalize: bool = False):
        super().__init__()
        reduction = _ALIASES.get(reduction, reduction)
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.classifier = classifier
        self.grl_scale = float(grl_scale)  # the trainer may ramp it (dann_grl_scale)
        self.reduction = reduction
        self.normalize = bool(normalize)

    @fp32_loss
    def forward(self, audio_emb: torch.Tensor,
                text_emb: torch.Tensor) -> tuple[torch.Tensor, float]:
        if audio_emb.dim() != 2 or text_emb.dim() != 2 or audio_emb.shape[1] != text_emb.shape[1]:
            raise ValueError(f"need audio (n, d) and text (m, d), got {tuple(audio_emb.shape)} "
                             f"and {tuple(text_emb.shape)}")
        n, m = audio_emb.shape[0], text_emb.shape[0]
        if n == 0 or m == 0:
            raise ValueError(f"need rows of both modalities, got {n} audio and {m} text rows")
        rows = torch.cat([audio_emb, text_emb], dim=0)
        if self.normalize:
            # The metric losses only see directions; on raw vectors the encoders can fool M
            # without bound by growing the norm, and L_adv then swamps L_utt.
            rows = F.normalize(rows, dim=1)
        rows = grad_reverse(rows, self.grl_scale)
        logits = self.classifier(rows)
        target = torch.cat([
            torch.full((n,), AUDIO_LABEL, dtype=torch.long, device=logits.device),
            torch.full((m,), TEXT_LABEL, dtype=torch.long, device=logits.device),
        ])
        if self.reduction == "mean":
            loss = F.cross_entropy(logits, target)
        else:
            ce = F.cross_entropy(logits, target, reduction="none")
            loss = ce[:n].mean() + ce[n:].mean()
        with torch.no_grad():
            accuracy = (logits.argmax(dim=1) == target).float().mean().item()
        return loss, accuracy

    def extra_repr(self) -> str:
        return (f"grl_scale={self.grl_scale}, reduction={self.reduction!r}, "
                f"normalize={self.normalize}")


def dann_grl_scale(progress: float, gamma: float = 10.0) -> float:
    """DANN's ramp of the GRL factor (Ganin et al. 2016): 2 / (1 + exp(-gamma * p)) - 1 for
    training progress p in [0, 1]; 0 at the start, about 1 from p = 0.5 on."""
    p = min(max(float(progress), 0.0), 1.0)
    return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0


class SpeakerAdversarialLoss(nn.Module):
    """Speaker-adversarial term (not in the paper; the MAL idea applied to the training
    voices, as in speaker-invariant training for ASR): a speaker classifier S (a
    ModalityClassifier with n_speakers classes) on the unit audio utterance embeddings behind a
    GRL,

        L_spk = -(1/n) sum_i log S(GRL(a_i / ||a_i||))_{speaker(i)},

    over the rows with a speaker id (id -1: none; 0, still in the graph, when no row has one).
    S learns the training voices; the encoder, through the reversed gradient, learns to hide
    them, so that a held-out voice is less far from the training ones. The caller applies the
    weight (``loss.spk_adv``).

    forward(audio_emb (n, d), speaker_ids (n,)) -> (loss, accuracy of S on those rows, a python
    float for logging; 0.0 without any)."""

    training_only = True

    def __init__(self, d: int, n_speakers: int, hidden: int = 256, grl_scale: float = 1.0):
        super().__init__()
        if n_speakers < 2:
            raise ValueError(f"a speaker-adversarial loss needs >= 2 training speakers, got "
                             f"{n_speakers}")
        self.classifier = ModalityClassifier(d, hidden, n_speakers)
        self.grl_scale = float(grl_scale)

    @fp32_loss
    def forward(self, audio_emb: torch.Tensor,
                speaker_ids: torch.Tensor) -> tuple[torch.Tensor, float]:
        keep = speaker_ids >= 0
        if not bool(keep.any()):
            return audio_emb.sum() * 0.0, 0.0
        rows = grad_reverse(F.normalize(audio_emb[keep], dim=1), self.grl_scale)
        logits = self.classifier(rows)
        target = speaker_ids[keep]
        loss = F.cross_entropy(logits, target)
        acc = float((logits.detach().argmax(1) == target).float().mean())
        return loss, acc
