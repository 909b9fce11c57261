"""Relational Proxy (RP) loss: the utterance-level loss L_utt, paper section 3.2.

The baseline of the paper's Table 1/2 (row 1, "RP loss", [13]); ADML keeps it as L_utt in
Eq. (3). Text embeddings are proxies, one per keyword in the batch; their relational structure
(distances, angles) is transferred to the audio embeddings with Huber losses (delta 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pyadml.losses.asyp import asyp_loss
from pyadml.losses.precision import fp32_loss


def pairwise_distances(x: torch.Tensor) -> torch.Tensor:
    """(n, n) Euclidean distances, exactly 0 for identical rows, with zero gradient there."""
    # The non-matmul path computes differences, so equal rows give exact zeros (used below to
    # drop same-keyword text pairs from mu); its backward is 0 at distance 0, not NaN.
    return torch.cdist(x, x, p=2.0, compute_mode="donot_use_mm_for_euclid_dist")


def distance_potentials(x: torch.Tensor) -> torch.Tensor:
    """psi_D = ||x_i - x_j|| / mu, mu = mean of the non-zero distances over pairs i != j.

    Zero distances (identical rows, e.g. two samples of one keyword on the text side) are left
    out of mu. If every distance is 0, mu is taken as 1 (all potentials are 0 anyway).
    """
    dist = pairwise_distances(x)
    off_diag = ~torch.eye(x.shape[0], dtype=torch.bool, device=x.device)
    nonzero = (dist > 0) & off_diag
    count = nonzero.sum()
    total = (dist * nonzero).sum()
    mu = torch.where(count > 0, total / count.clamp_min(1), torch.ones_like(total))
    return dist / mu


def _unit_or_zero(v: torch.Tensor) -> torch.Tensor:
    """v / ||v|| along the last axis; exact zero vectors stay 0 with zero gradient."""
    norm = torch.linalg.vector_norm(v, dim=-1, keepdim=True)
    # Same value as F.normalize(v, eps), but F.normalize's gradient at v = 0 is scaled by 1/eps.
    return torch.where(norm > 0, v / norm.clamp_min(torch.finfo(v.dtype).tiny), torch.zeros_like(v))


def angle_potentials(x: torch.Tensor) -> torch.Tensor:
    """psi_A[j, i, k] = cos of the angle at x_j between x_i - x_j and x_k - x_j, shape (n, n, n).

    A zero difference (x_i = x_j: two samples of one keyword on the text side) has no direction;
    its unit vector is taken as 0, so every cosine that uses it is 0.
    """
    unit = _unit_or_zero(x.unsqueeze(0) - x.unsqueeze(1))  # unit[j, i] = dir(x_i - x_j)
    return unit @ unit.transpose(1, 2)


def _distinct_triplets(n: int, device) -> torch.Tensor:
    eye = torch.eye(n, dtype=torch.bool, device=device)
    # Indexed [j, i, k]: i != j, k != j, i != k.
    return ~(eye.unsqueeze(2) | eye.unsqueeze(1) | eye.unsqueeze(0))


def rpl_distance(audio: torch.Tensor, text: torch.Tensor, delta: float = 1.0) -> torch.Tensor:
    """Huber(psi_D(audio_i, audio_j), psi_D(text_i, text_j)) averaged over pairs i != j."""
    n = audio.shape[0]
    if n < 2:
        return audio.new_zeros(())
    off_diag = ~torch.eye(n, dtype=torch.bool, device=audio.device)
    return F.huber_loss(
        distance_potentials(audio)[off_diag], distance_potentials(text)[off_diag], delta=delta
    )


def rpl_angle(audio: torch.Tensor, text: torch.Tensor, delta: float = 1.0) -> torch.Tensor:
    """Huber(psi_A(audio_i, audio_j, audio_k), psi_A(text ...)) averaged over distinct triplets."""
    n = audio.shape[0]
    if n < 3:
        return audio.new_zeros(())
    mask = _distinct_triplets(n, audio.device).to(audio.dtype)
    # Multiplying by the mask avoids a boolean gather over n^3 entries.
    per = F.huber_loss(angle_potentials(audio), angle_potentials(text), reduction="none", delta=delta)
    return (per * mask).sum() / (n * (n - 1) * (n - 2))


def subsample_indices(n: int, max_samples: int | None, generator: torch.Generator | None, device):
    """None when n <= max_samples (or no cap); else randperm(n, generator)[:max_samples]."""
    if max_samples is None or n <= max_samples:
        return None
    # Drawn on the CPU so one CPU generator (or the global CPU RNG) works for any device.
    return torch.randperm(n, generator=generator)[:max_samples].to(device)


class RelationalProxyLoss(nn.Module):
    """RP loss (paper section 3.2; Table 1/2 row 1, Eq. 3's L_utt) with text proxies T_c:

        L = AsyP_utt + w_D RPL-D + w_A RPL-A + w_P RPL-P,
        RPL-D = Huber(||a_i - a_j|| / mu_a, ||T_yi - T_yj|| / mu_t)                 over i != j,
        RPL-A = Huber(cos angle_j(a_i, a_j, a_k), cos angle_j(T_yi, T_yj, T_yk))    over distinct i, j, k,
        RPL-P = the same distance + proto_angle_weight * angle terms between class prototypes
                p_c = mean_{y_i = c} a_i and proxies T_c,
        AsyP_utt = asyp_loss(T_yi, a_i, y_i; alpha, beta, lam)  (Eq. 2, fixed hyperparameters).

    Documented choices (the paper, which follows [13] for RP loss, does not fix them):
      - Proxy T_c = mean of the text rows of keyword c (the rows are identical when the text
        encoder is deterministic; the mean stays well defined under dropout).
      - ``detach_text`` detaches the text side of the three relational terms only (teacher).
        AsyP_utt always sees live text embeddings: it is what trains the text encoder's
        utterance embedding to match the audio.
      - Distances use the raw embeddings with mean normalisation mu, as in relational knowledge
        distillation; ``normalize_embeddings=True`` L2-normalises both sides first (prototypes
        are then means of unit vectors, not renormalised). mu is part of the graph.
      - Same-keyword text pairs have distance 0 and are left out of mu_t; their undefined angle
        directions are taken as zero vectors (cosine 0) with zero gradient.
      - Angles: when N > ``max_angle_samples`` a random subset of that many samples is used,
        ``torch.randperm(N, generator=generator)[:max_angle_samples]`` (global CPU RNG if
        ``generator`` is None); the prototype angles draw a second subset the same way when the
        number of classes K exceeds the cap. No RNG is consumed below the cap. None = no cap.
    """

    def __init__(
        self,
        w_d: float = 1.0,
        w_a: float = 2.0,
        w_p: float = 1.0,
        proto_angle_weight: float = 1.0,
        asyp_alpha: float = 0.01,
        asyp_beta: float = 1.5,
        asyp_lam: float = 0.01,
        huber_delta: float = 1.0,
        detach_text: bool = True,
        max_angle_samples: int | None = 128,
        normalize_embeddings: bool = False,
    ):
        super().__init__()
        if max_angle_samples is not None and max_angle_samples < 3:
            raise ValueError("max_angle_samples must be >= 3 (an angle needs three points) or None")
        self.w_d = float(w_d)
        self.w_a = float(w_a)
        self.w_p = float(w_p)
        self.proto_angle_weight = float(proto_angle_weight)
        self.asyp_alpha = float(asyp_alpha)
        self.asyp_beta = float(asyp_beta)
        self.asyp_lam = float(asyp_lam)
        self.huber_delta = float(huber_delta)
        self.detach_text = bool(detach_text)
        self.max_angle_samples = max_angle_samples
        self.normalize_embeddings = bool(normalize_embeddings)

    @fp32_loss
    def forward(
        self,
        audio_utt: torch.Tensor,
        text_utt: torch.Tensor,
        labels: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """audio_utt, text_utt: (N, d), row i the audio and its keyword's text; labels: (N,).

        Returns the total loss and the terms as python floats for logging.
        """
        if audio_utt.shape != text_utt.shape or audio_utt.dim() != 2:
            raise ValueError(
                f"need audio_utt and text_utt of one shape (N, d), got "
                f"{tuple(audio_utt.shape)} and {tuple(text_utt.shape)}"
            )
        classes, inv = torch.unique(labels, return_inverse=True)
        k = classes.shape[0]
        counts = torch.bincount(inv, minlength=k).to(audio_utt.dtype).unsqueeze(1)

        def class_mean(x):
            return x.new_zeros(k, x.shape[1]).index_add(0, inv, x) / counts

        proxies = class_mean(text_utt)
        asyp = asyp_loss(proxies[inv], audio_utt, inv, self.asyp_alpha, self.asyp_beta, self.asyp_lam)

        audio = F.normalize(audio_utt, dim=1) if self.normalize_embeddings else audio_utt
        teacher = proxies.detach() if self.detach_text else proxies
        if self.normalize_embeddings:
            teacher = F.normalize(teacher, dim=1)
        text = teacher[inv]  # T_{y_i}
        prototypes = class_mean(audio)

        delta = self.huber_delta
        rpl_d = rpl_distance(audio, text, delta)

        idx = subsample_indices(audio.shape[0], self.max_angle_samples, generator, audio.device)
        rpl_a = rpl_angle(audio, text, delta) if idx is None else rpl_angle(audio[idx], text[idx], delta)

        pidx = subsample_indices(k, self.max_angle_samples, generator, audio.device)
        p_audio, p_text = (prototypes, teacher) if pidx is None else (prototypes[pidx], teacher[pidx])
        rpl_p = rpl_distance(prototypes, teacher, delta) + self.proto_angle_weight * rpl_angle(
            p_audio, p_text, delta
        )

        total = asyp + self.w_d * rpl_d + self.w_a * rpl_a + self.w_p * rpl_p
        values = torch.stack([asyp, rpl_d, rpl_a, rpl_p]).detach().tolist()  # one device sync
        return total, dict(zip(("asyp_utt", "rpl_d", "rpl_a", "rpl_p"), values))

    def extra_repr(self) -> str:
        return (
            f"w_d={self.w_d}, w_a={self.w_a}, w_p={self.w_p}, "
            f"proto_angle_weight={self.proto_angle_weight}, asyp=({self.asyp_alpha}, "
            f"{self.asyp_beta}, {self.asyp_lam}), huber_delta={self.huber_delta}, "
            f"detach_text={self.detach_text}, max_angle_samples={self.max_angle_samples}, "
            f"normalize_embeddings={self.normalize_embeddings}"
        )
