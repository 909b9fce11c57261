"""The training objective: the acoustic and text encoders and every training loss."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pyadml.losses import RelationalProxyLoss
from pyadml.losses.keyword import build_keyword_loss
from pyadml.losses.mm import MonotonicMatchingLoss
from pyadml.losses.phoneme import build_phoneme_loss
from pyadml.models import EcapaConfig, EcapaEncoder, TextEncoder, TextEncoderConfig
from pyadml.models.cross_attention import PhonemeCrossAttention, flatten_valid
from pyadml.models.modality import ModalityAdversarialLoss, ModalityClassifier, dann_grl_scale


class KwsObjective(nn.Module):
    """The encoders and the training losses (paper section 3):

        L = L_utt + L_key + L_MM + lambda_phn * L_phn + lambda_adv * (L_adv^phn + L_adv^utt)

    that is L_emb (Eq. 3) plus lambda_adv * L_adv (Eq. 4); the gradient reversal layer in front of
    the modality classifier turns this sum into the minimax of Eq. 5.
    Every term is switched by the ``loss`` config; the defaults give the RP-loss baseline.
    Encoder weights live under ``audio.`` and ``text.``, as the exported model expects;
    everything else (attention, classifiers, AdaMS scales) is training-only."""

    def __init__(self, cfg: dict, vocab_size: int, num_keywords: int = 0):
        super().__init__()
        self.audio = EcapaEncoder(EcapaConfig(**cfg["model"]["audio"]))
        self.text = TextEncoder(TextEncoderConfig(vocab_size=vocab_size, **cfg["model"]["text"]))
        loss = cfg["loss"]
        self.loss_cfg = loss
        if loss["utt"] != "rp":
            raise ValueError(f"loss.utt={loss['utt']!r}: only 'rp' is implemented")
        self.utt_loss = RelationalProxyLoss(**loss["rp"])
        d = self.audio.embed_dim
        self.phn_loss = build_phoneme_loss(loss["phn"], vocab_size, **loss["phn_opts"])
        self.use_mm = bool(loss["mm"])
        self.phoneme_level = self.phn_loss is not None or self.use_mm or loss["mal_phn"]
        if self.phoneme_level:
            self.xattn = PhonemeCrossAttention(d)
            self.mm_loss = MonotonicMatchingLoss(target=loss["mm_target"])
        if loss["mal_utt"] or loss["mal_phn"]:
            mo = loss["mal_opts"]
            if mo["grl_warmup"] not in ("none", "dann"):
                raise ValueError(f"loss.mal_opts.grl_warmup={mo['grl_warmup']!r}: "
                                 "expected 'none' or 'dann'")
            self.mal = ModalityAdversarialLoss(ModalityClassifier(d), normalize=mo["normalize"])
        self.key_loss = None
        if loss["key"] != "none":
            if num_keywords < 2:
                raise ValueError("a keyword classification loss needs the training keyword ids")
            opts = loss["key_opts"].get(loss["key"], {})
            self.key_loss = build_keyword_loss(loss["key"], d, num_keywords, **opts)

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.loss_cfg
        a_phn, a_utt, a_mask = self.audio(batch["feats"], batch["feat_lens"])
        # Each keyword's M rows share one text: encode the K distinct ones and expand.
        _, first, inverse = np.unique(np.asarray(batch["texts"]), return_index=True,
                                      return_inverse=True)
        dev = batch["phones"].device
        idx = torch.as_tensor(first, device=dev)
        rows = torch.as_tensor(inverse, device=dev)
        t_phn, t_utt, t_mask = self.text(batch["phones"][idx], batch["phone_lens"][idx])
        t_rows = t_utt[rows]
        labels = torch.as_tensor(inverse, device=dev)
        l_utt, terms = self.utt_loss(a_utt.float(), t_rows.float(), labels)
        total = l_utt
        terms = {"l_utt": float(l_utt.detach()), **terms}
        if self.phoneme_level:
            t_phn, t_mask, phones = t_phn[rows], t_mask[rows], batch["phones"][idx][rows]
            aligned, attn = self.xattn(t_phn.float(), t_mask, a_phn.float(), a_mask)
            a_hat, t_hat, phn_labels = flatten_valid(t_mask, aligned, t_phn.float(), phones)
            if self.use_mm:
                l_mm = self.mm_loss(attn, t_mask, a_mask)
                total = total + l_mm
                terms["l_mm"] = float(l_mm.detach())
            if self.phn_loss is not None:
                l_phn = self.phn_loss(t_hat, a_hat, phn_labels)
                total = total + cfg["lambda_phn"] * l_phn
                terms["l_phn"] = float(l_phn.detach())
            if cfg["mal_phn"]:
                l_adv, acc = self.mal(a_hat, t_hat)
                total = total + cfg["lambda_adv"] * l_adv
                terms.update(l_adv_phn=float(l_adv.detach()), mal_acc_phn=acc)
        if cfg["mal_utt"]:
            l_adv, acc = self.mal(a_utt.float(), t_rows.float())
            total = total + cfg["lambda_adv"] * l_adv
            terms.update(l_adv_utt=float(l_adv.detach()), mal_acc_utt=acc)
        if self.key_loss is not None:
            l_key = self.key_loss(a_utt.float(), batch["keyword_ids"])
            total = total + l_key
            terms["l_key"] = float(l_key.detach())
        terms["loss"] = float(total.detach())
        return total, terms

    def set_progress(self, progress: float) -> dict[str, float]:
        """Training progress in [0, 1] (step / total steps) drives the GRL warm-up."""
        if not hasattr(self, "mal"):
            return {}
        mo = self.loss_cfg["mal_opts"]
        if mo["grl_warmup"] == "dann":
            self.mal.grl_scale = dann_grl_scale(progress, mo["grl_gamma"])
        return {"grl_scale": self.mal.grl_scale}

    def no_weight_decay_parameters(self) -> list[nn.Parameter]:
        return list(self.phn_loss.no_weight_decay_parameters()) if hasattr(
            self.phn_loss, "no_weight_decay_parameters") else []

    def after_optimizer_step(self) -> dict[str, float]:
        """Clamp the AdaMS scales, advance margin warm-ups; returns values to log."""
        stats = {}
        if hasattr(self.phn_loss, "clamp_"):
            self.phn_loss.clamp_()
            if any(p.requires_grad for p in self.phn_loss.parameters()):
                stats.update({f"adams_{k}": v for k, v in self.phn_loss.stats().items()})
        if hasattr(self.key_loss, "step"):
            self.key_loss.step()
        return stats