"""The training objective of the detector baselines (PhonMatchNet, CMCD; paper Tables 2 and 4)
on the recipe's own encoders, and the choice between it and ADML's KwsObjective.

``model.head`` picks the model: ``adml`` (KwsObjective, the embedding model scored by cosine),
``phonmatchnet`` or ``cmcd`` (DetectorObjective, scored by the head's probability). The loss:

    PhonMatchNet:  w_utt * BCE(utterance) + w_phn * BCE(phonemes)
    CMCD:          w_utt * BCE(utterance) + w_mm * L_MM(attention of the matched pairs)
    +MAL (loss.mal_phn):  + lambda_adv * L_adv^phn on the matched pairs' aligned phoneme vectors

with the pairs of pyadml.data.pairs (matched, random in-batch mismatches, hard negatives by
phoneme edit distance; ``loss.detector``). Phoneme-level MAL is KwsObjective's: the shared
modality classifier behind the GRL sees, at every valid text position of a matched pair, the
text encoder's phoneme state and the audio frames averaged by the head's own alignment
(alignment @ a_phn), both at the encoders' d.

Pairs are built from each process's own batch: ``loss.all_gather`` does not apply (the losses
are per pair). CMCD's de-noising loss is left out: its form is unpublished, and the recipe's batches hold one
(possibly augmented) copy of each utterance, not a clean and a noisy one.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pyadml.data.pairs import build_pairs
from pyadml.losses.mm import MonotonicMatchingLoss
from pyadml.models import EcapaConfig, EcapaEncoder, TextEncoder, TextEncoderConfig
from pyadml.models.baselines import HEADS, build_head
from pyadml.models.modality import ModalityAdversarialLoss, ModalityClassifier
from pyadml.train.objective import KwsObjective


def model_head(cfg: dict) -> str:
    head = cfg["model"].get("head", "adml")
    if head != "adml" and head not in HEADS:
        raise ValueError(f"model.head={head!r}: expected adml or one of {HEADS}")
    return head


def build_objective(cfg: dict, vocab_size: int, num_keywords: int = 0,
                    num_speakers: int = 0) -> nn.Module:
    """KwsObjective for ``model.head: adml``, else DetectorObjective."""
    if model_head(cfg) == "adml":
        return KwsObjective(cfg, vocab_size, num_keywords, num_speakers)
    if cfg["loss"]["spk_adv"]:
        raise ValueError(f"loss.spk_adv: the speaker-adversarial term is built for model.head "
                         f"adml, not {model_head(cfg)}")
    return DetectorObjective(cfg, vocab_size, num_keywords)


class DetectorObjective(nn.Module):
    """Encoders under ``audio.`` and ``text.``, the detector under ``head.`` (all three are
    exported); the modality classifier is training-only."""

    def __init__(self, cfg: dict, vocab_size: int, num_keywords: int = 0):
        super().__init__()
        self.head_name = model_head(cfg)
        if self.head_name == "adml":
            raise ValueError("DetectorObjective needs model.head phonmatchnet or cmcd")
        self.audio = EcapaEncoder(EcapaConfig(**cfg["model"]["audio"]))
        self.text = TextEncoder(TextEncoderConfig(vocab_size=vocab_size, **cfg["model"]["text"]))
        d = self.audio.embed_dim
        if self.text.embed_dim != d:
            raise ValueError(f"audio d={d} != text d={self.text.embed_dim}")
        self.head = build_head(self.head_name, d, **cfg["model"]["head_opts"])
        loss = cfg["loss"]
        self.loss_cfg = loss
        self.det = dict(loss["detector"])
        unsupported = [k for k, off in (("loss.phn", loss["phn"] == "none"),
                                        ("loss.key", loss["key"] == "none"),
                                        ("loss.mal_utt", not loss["mal_utt"]),
                                        ("loss.text_negatives",
                                         not loss["text_negatives"]["count"]),
                                        ("loss.ctc", not loss["ctc"])) if not off]
        if unsupported:
            raise ValueError(f"model.head={self.head_name}: {', '.join(unsupported)} are ADML "
                             f"losses; a detector takes loss.detector and loss.mal_phn only")
        self.use_mm = self.head_name == "cmcd" and self.det["w_mm"] > 0
        if self.use_mm:
            self.mm_loss = MonotonicMatchingLoss(target=loss["mm_target"])
        if loss["mal_phn"]:
            mo = loss["mal_opts"]
            if mo["grl_warmup"] not in ("none", "dann"):
                raise ValueError(f"loss.mal_opts.grl_warmup={mo['grl_warmup']!r}: "
                                 "expected 'none' or 'dann'")
            self.mal = ModalityAdversarialLoss(ModalityClassifier(d), normalize=mo["normalize"],
                                               reduction=mo.get("reduction", "mean"))

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        det = self.det
        a_phn, _, a_mask = self.audio(batch["feats"], batch["feat_lens"])
        _, first, inverse = np.unique(np.asarray(batch["texts"]), return_index=True,
                                      return_inverse=True)
        dev = batch["phones"].device
        idx = torch.as_tensor(first, device=dev)
        phones, lens = batch["phones"][idx], batch["phone_lens"][idx]
        t_phn, _, t_mask = self.text(phones, lens)
        seqs = [p[:n].tolist() for p, n in zip(phones.cpu(), lens.cpu())]
        pairs = build_pairs(inverse.reshape(-1).tolist(), seqs, det["mismatches"],
                            det["hard_negatives"])
        ai, ti = pairs.audio.to(dev), pairs.text.to(dev)
        label = pairs.label.to(dev)
        # The head runs under the trainer's autocast (if any); every loss in float32.
        out = self.head(a_phn[ai], a_mask[ai], t_phn[ti], t_mask[ti])
        with torch.autocast(device_type=dev.type, enabled=False):
            return self._losses(out, pairs, label, ai, ti, a_phn, a_mask, t_phn, t_mask)

    def _losses(self, out, pairs, label, ai, ti, a_phn, a_mask, t_phn, t_mask):
        cfg, det = self.loss_cfg, self.det
        dev = label.device
        l_utt = F.binary_cross_entropy_with_logits(out.logit.float(), label)
        total = det["w_utt"] * l_utt
        with torch.no_grad():
            acc = ((out.logit > 0).float() == label).float().mean().item()
        terms = {"l_bce": float(l_utt.detach()), "acc": acc, "pos_frac": float(label.mean())}
        pair_t_mask = t_mask[ti]
        if out.phn_logits is not None and det["w_phn"] > 0:
            target = pairs.phn_label.to(dev)[:, : pair_t_mask.shape[1]]
            per = F.binary_cross_entropy_with_logits(out.phn_logits.float(), target,
                                                     reduction="none")
            m = pair_t_mask.float()
            l_phn = (per * m).sum() / m.sum().clamp_min(1.0)
            total = total + det["w_phn"] * l_phn
            terms["l_phn_bce"] = float(l_phn.detach())
        matched = label > 0.5
        if self.use_mm:
            l_mm = self.mm_loss(out.alignment.float(), pair_t_mask, a_mask[ai], matched=matched)
            total = total + det["w_mm"] * l_mm
            terms["l_mm"] = float(l_mm.detach())
        if cfg["mal_phn"] and bool(matched.any()):
            rows = matched.nonzero().squeeze(1)
            aligned = out.alignment[rows].float() @ a_phn[ai[rows]].float()
            keep = pair_t_mask[rows]
            a_hat, t_hat = aligned[keep], t_phn[ti[rows]].float()[keep]
            l_adv, m_acc = self.mal(a_hat, t_hat)
            total = total + cfg["lambda_adv"] * l_adv
            terms.update(l_adv_phn=float(l_adv.detach()), mal_acc_phn=m_acc)
        terms["loss"] = float(total.detach())
        return total, terms

    # The GRL warm-up, as ADML's objective drives it (self.mal, self.loss_cfg alike).
    set_progress = KwsObjective.set_progress

    def no_weight_decay_parameters(self) -> list[nn.Parameter]:
        return []

    def after_optimizer_step(self) -> dict[str, float]:
        return {}
