"""The training objective: the acoustic and text encoders and every training loss."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pyadml.losses import RelationalProxyLoss
from pyadml.losses.ctc import PhoneCtcLoss
from pyadml.losses.keyword import build_keyword_loss
from pyadml.losses.mm import MonotonicMatchingLoss
from pyadml.losses.phoneme import build_phoneme_loss
from pyadml.losses.text_negatives import text_negative_loss
from pyadml.models import EcapaConfig, EcapaEncoder, TextEncoder, TextEncoderConfig
from pyadml.models.cross_attention import PhonemeCrossAttention, flatten_valid
from pyadml.models.modality import (ModalityAdversarialLoss, ModalityClassifier,
                                    SpeakerAdversarialLoss, dann_grl_scale)
from pyadml.data.text_negatives import check_text_negatives


class _GatherRows(torch.autograd.Function):
    """Rows of every rank concatenated in rank order; backward sums each row's gradient over the
    ranks (every rank computes the same global loss) and returns this rank's rows."""

    @staticmethod
    def forward(ctx, x, counts, rank):
        import torch.distributed as dist

        pad = x.new_zeros((max(counts) - x.shape[0], *x.shape[1:]))
        xp = torch.cat([x, pad]).contiguous()
        parts = [torch.empty_like(xp) for _ in counts]
        dist.all_gather(parts, xp)
        ctx.counts, ctx.rank = counts, rank
        return torch.cat([p[:n] for p, n in zip(parts, counts)])

    @staticmethod
    def backward(ctx, grad):
        import torch.distributed as dist

        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        start = sum(ctx.counts[:ctx.rank])
        return grad[start:start + ctx.counts[ctx.rank]], None, None


class RowGather:
    """All-gather of per-rank rows (different row counts allowed) with gradient; None from
    ``create()`` when there is no process group of more than one rank."""

    def __init__(self, rank: int, world: int):
        self.rank, self.world = rank, world

    @classmethod
    def create(cls):
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
            return None
        return cls(dist.get_rank(), dist.get_world_size())

    def counts(self, n: int, device) -> list[int]:
        import torch.distributed as dist

        local = torch.tensor([n], dtype=torch.long, device=device)
        parts = [torch.empty_like(local) for _ in range(self.world)]
        dist.all_gather(parts, local)
        return [int(p) for p in parts]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        counts = self.counts(x.shape[0], x.device)
        if not x.is_floating_point():
            with torch.no_grad():
                return _GatherRows.apply(x, counts, self.rank)
        return _GatherRows.apply(x, counts, self.rank)

    def objects(self, obj) -> list:
        import torch.distributed as dist

        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def mean_count(self, n: int, device) -> float:
        """The ranks' total of n divided by the number of ranks."""
        return sum(self.counts(n, device)) / self.world


class KwsObjective(nn.Module):
    """The encoders and the training losses (paper section 3):

        L = L_utt + L_key + L_MM + lambda_phn * L_phn + lambda_adv * (L_adv^phn + L_adv^utt)

    that is L_emb (Eq. 3) plus lambda_adv * L_adv (Eq. 4), and, outside the paper, ctc * L_CTC
    with loss.ctc > 0 (pyadml.losses.ctc) and spk_adv * L_spk with loss.spk_adv > 0 (a speaker
    classifier behind a GRL: pyadml.models.modality.SpeakerAdversarialLoss); the gradient
    reversal layer in front of the modality classifier turns this sum into the minimax of Eq. 5.
    Every term is switched by the ``loss`` config; the defaults give the RP-loss baseline.
    Encoder weights live under ``audio.`` and ``text.``, as the exported model expects;
    everything else (attention, classifiers, AdaMS scales) is training-only."""

    def __init__(self, cfg: dict, vocab_size: int, num_keywords: int = 0, num_speakers: int = 0):
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
            self.mal = ModalityAdversarialLoss(ModalityClassifier(d), normalize=mo["normalize"],
                                               reduction=mo["reduction"])
        self.text_neg = check_text_negatives(loss["text_negatives"])
        self.key_loss = None
        if loss["key"] != "none":
            if num_keywords < 2:
                raise ValueError("a keyword classification loss needs the training keyword ids")
            opts = loss["key_opts"].get(loss["key"], {})
            self.key_loss = build_keyword_loss(loss["key"], d, num_keywords, **opts)
        self.ctc_weight = float(loss["ctc"])
        if not self.ctc_weight >= 0:
            raise ValueError(f"loss.ctc={loss['ctc']!r}: expected a weight >= 0 (0: off)")
        self.spk_weight = float(loss["spk_adv"])
        if not self.spk_weight >= 0:
            raise ValueError(f"loss.spk_adv={loss['spk_adv']!r}: expected a weight >= 0 (0: off)")
        if self.ctc_weight:
            # Built last, so that the other parts' initial weights do not depend on it.
            self.ctc_loss = PhoneCtcLoss(d, vocab_size)
        if self.spk_weight:
            # After the CTC layer, for the same reason.
            if num_speakers < 2:
                raise ValueError(f"loss.spk_adv={self.spk_weight}: needs the ids of >= 2 training "
                                 f"speakers, got {num_speakers}")
            self.spk_adv = SpeakerAdversarialLoss(d, num_speakers)

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        a_phn, a_utt, a_mask = self.audio(batch["feats"], batch["feat_lens"])
        # Each keyword's M rows share one text: encode the K distinct ones and expand.
        _, first, inverse = np.unique(np.asarray(batch["texts"]), return_index=True,
                                      return_inverse=True)
        dev = batch["phones"].device
        idx = torch.as_tensor(first, device=dev)
        rows = torch.as_tensor(inverse, device=dev)
        t_phn, t_utt, t_mask = self.text(batch["phones"][idx], batch["phone_lens"][idx])
        n_rows = self.near_miss_rows(batch, rows) if self.text_neg["count"] else None
        # Autocast (train amp) covers the encoders only: the cross-attention that feeds the
        # phoneme losses and every loss run in float32 (bf16 spacing near cosine 1 is 0.004).
        with torch.autocast(device_type=a_utt.device.type, enabled=False):
            return self._losses(batch, a_phn.float(), a_utt.float(), a_mask, t_phn.float(),
                                t_utt.float(), t_mask, idx, rows, n_rows)

    def near_miss_rows(self, batch: dict, rows: torch.Tensor) -> torch.Tensor:
        """(B, count, d) utterance embeddings of each row's near-miss texts (the dataset's
        ``neg_*`` keys, grouped by its sorted distinct texts)."""
        if "neg_phones" not in batch:
            raise ValueError("loss.text_negatives.count > 0 but the batch has no near-miss "
                             "texts (neg_phones): build the dataset with text_negatives")
        count = self.text_neg["count"]
        owners = list(batch["neg_texts"])
        if batch["neg_phones"].shape[0] != len(owners) * count:
            raise ValueError(f"near-miss texts: {batch['neg_phones'].shape[0]} rows for "
                             f"{len(owners)} texts x loss.text_negatives.count={count}")
        _, n_utt, _ = self.text(batch["neg_phones"], batch["neg_phone_lens"])
        n_utt = n_utt.reshape(len(owners), count, -1)
        where = {t: k for k, t in enumerate(owners)}
        # np.unique's order of forward(): the row's text index -> its owner's block.
        distinct = np.unique(np.asarray(batch["texts"]))
        order = torch.as_tensor([where[t] for t in distinct], device=n_utt.device)
        return n_utt[order][rows]

    def _losses(self, batch, a_phn, a_utt, a_mask, t_phn, t_utt, t_mask, idx, rows,
                n_rows=None):
        cfg = self.loss_cfg
        gather = RowGather.create() if cfg["all_gather"] else None
        t_rows = t_utt[rows]
        labels = rows
        tn_term = None
        if n_rows is not None:
            # A per-row loss on this rank's rows (before any gather).
            tn = self.text_neg
            tn_term = text_negative_loss(a_utt, t_rows, n_rows.float(), margin=tn["margin"],
                                         scale=tn["scale"])
        keyword_ids = batch.get("keyword_ids") if self.key_loss is not None else None
        ctc_term = None
        if self.ctc_weight:
            # A per-row loss on this rank's rows, as the near-miss texts' (before any gather).
            ctc_term = self.ctc_loss(a_phn, a_mask, batch["phones"], batch["phone_lens"])
        spk_term = None
        if self.spk_weight:
            # A per-row loss on this rank's rows too.
            if "speaker_ids" not in batch:
                raise ValueError("loss.spk_adv > 0 but the batch has no speaker_ids: build the "
                                 "dataset with speaker_ids")
            spk_term, spk_acc = self.spk_adv(a_utt, batch["speaker_ids"].to(a_utt.device))
        if gather is not None:
            # Batch-wise losses see the global batch; each rank keeps its rows' gradients.
            a_utt, t_rows = gather(a_utt), gather(t_rows)
            texts = [t for part in gather.objects(list(batch["texts"])) for t in part]
            labels = torch.as_tensor(np.unique(np.asarray(texts), return_inverse=True)[1],
                                     device=a_utt.device)
            if keyword_ids is not None:
                keyword_ids = gather(keyword_ids)
        l_utt, terms = self.utt_loss(a_utt, t_rows, labels)
        total = l_utt
        terms = {"l_utt": float(l_utt.detach()), **terms}
        if tn_term is not None:
            total = total + self.text_neg["weight"] * tn_term
            terms["l_tn"] = float(tn_term.detach())
        if ctc_term is not None:
            total = total + self.ctc_weight * ctc_term
            terms["l_ctc"] = float(ctc_term.detach())
        if spk_term is not None:
            total = total + self.spk_weight * spk_term
            terms.update(l_spk=float(spk_term.detach()), spk_acc=spk_acc)
        if self.phoneme_level:
            t_phn, t_mask, phones = t_phn[rows], t_mask[rows], batch["phones"][idx][rows]
            aligned, attn = self.xattn(t_phn, t_mask, a_phn, a_mask)
            a_hat, t_hat, phn_labels = flatten_valid(t_mask, aligned, t_phn, phones)
            if self.use_mm:
                # A per-pair loss: local, normalised so that the ranks' mean is the global mean.
                num_rows = gather.mean_count(int(t_mask.sum()), t_mask.device) if gather is not None else None
                l_mm = self.mm_loss(attn, t_mask, a_mask, num_rows=num_rows)
                total = total + l_mm
                terms["l_mm"] = float(l_mm.detach())
            if gather is not None:
                a_hat, t_hat, phn_labels = gather(a_hat), gather(t_hat), gather(phn_labels)
            if self.phn_loss is not None:
                l_phn = self.phn_loss(t_hat, a_hat, phn_labels)
                total = total + cfg["lambda_phn"] * l_phn
                terms["l_phn"] = float(l_phn.detach())
            if cfg["mal_phn"]:
                l_adv, acc = self.mal(a_hat, t_hat)
                total = total + cfg["lambda_adv"] * l_adv
                terms.update(l_adv_phn=float(l_adv.detach()), mal_acc_phn=acc)
        if cfg["mal_utt"]:
            l_adv, acc = self.mal(a_utt, t_rows)
            total = total + cfg["lambda_adv"] * l_adv
            terms.update(l_adv_utt=float(l_adv.detach()), mal_acc_utt=acc)
        if self.key_loss is not None:
            l_key = self.keyword_loss(a_utt, keyword_ids)
            total = total + l_key
            terms["l_key"] = float(l_key.detach())
        terms["loss"] = float(total.detach())
        return total, terms

    def keyword_loss(self, a_utt: torch.Tensor, keyword_ids: torch.Tensor) -> torch.Tensor:
        """L_key over the rows with a keyword class. Rows with keyword id -1 (multi-word span
        cuts, and any text outside keywords.txt) have no class: they are left out, so L_key is
        exactly the loss of the batch without them (0, still in the graph, when none is left)."""
        keep = keyword_ids >= 0
        if not bool(keep.any()):
            return a_utt.sum() * 0.0
        if not bool(keep.all()):
            a_utt, keyword_ids = a_utt[keep], keyword_ids[keep]
        return self.key_loss(a_utt.float(), keyword_ids)

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
        """Log the AdaMS scales (bounded by construction), advance margin warm-ups."""
        stats = {}
        if hasattr(self.phn_loss, "stats") and any(p.requires_grad for p in self.phn_loss.parameters()):
            stats.update({f"adams_{k}": v for k, v in self.phn_loss.stats().items()})
        if hasattr(self.key_loss, "step"):
            self.key_loss.step()
        return stats