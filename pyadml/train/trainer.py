"""The trainer: K x M keyword batches, DDP over torchrun's processes, atomic checkpoints and
exact resumption (model, optimiser, scheduler, sampler and RNG states)."""

from __future__ import annotations

import json
import logging
import os
import random
import re
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from pyadml.data.dataset import KeywordDataset, read_keyword_ids
from pyadml.data.sampler import KeywordBatchSampler
from pyadml.fileio import atomic_path
from pyadml.losses import RelationalProxyLoss
from pyadml.losses.keyword import build_keyword_loss
from pyadml.losses.mm import MonotonicMatchingLoss
from pyadml.losses.phoneme import build_phoneme_loss
from pyadml.models import EcapaConfig, EcapaEncoder, KwsModel, TextEncoder, TextEncoderConfig
from pyadml.models.cross_attention import PhonemeCrossAttention, flatten_valid
from pyadml.models.modality import ModalityAdversarialLoss, ModalityClassifier, dann_grl_scale
from pyadml.text import PhoneTable, read_lexicon
from pyadml.train.config import save_config

log = logging.getLogger("pyadml.train")


class KwsObjective(nn.Module):
    """The encoders and the training losses (model_spec sections 3-7):

        L = L_utt + L_key + L_MM + lambda_phn * L_phn + lambda_adv * (L_adv^phn + L_adv^utt)   (Eq. 3, 5)

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


def setup_distributed(device_pref: str = "auto") -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_pref in ("auto", "cuda")
    device = torch.device(f"cuda:{local}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return rank, world, device


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    best, best_step = None, -1
    for p in ckpt_dir.glob("*.pt"):
        m = re.fullmatch(r"(epoch|step)-(\d+)\.pt", p.name)
        if not m:
            continue
        step = torch.load(p, map_location="cpu", weights_only=False)["step"]
        if step > best_step:
            best, best_step = p, step
    return best


class Trainer:
    def __init__(self, cfg: dict, exp_dir: str | os.PathLike, resume: bool = False):
        self.cfg = cfg
        self.exp = Path(exp_dir)
        self.rank, self.world, self.device = setup_distributed(cfg["device"])
        self._setup_logging()
        # steps/train.sh says how many cores each process has (the node's, or the Slurm allocation's).
        threads = (cfg["threads"] or int(os.environ.get("PYADML_TRAIN_THREADS", "0"))
                   or max(1, (os.cpu_count() or 1) // max(1, self.world)))
        torch.set_num_threads(threads)
        random.seed(cfg["seed"])
        np.random.seed(cfg["seed"])
        torch.manual_seed(cfg["seed"])

        from lhotse import CutSet

        d = cfg["data"]
        lang = Path(d["lang"])
        self.phones = PhoneTable.read(lang / "phones.txt")
        self.lexicon = read_lexicon(lang / "lexicon.txt")
        self.keyword_ids = read_keyword_ids(lang / "keywords.txt")
        cuts = CutSet.from_file(d["train"]).to_eager()
        self.dataset = KeywordDataset(cuts, self.lexicon, self.phones, self.keyword_ids,
                                      pad_multiple=cfg["pad_frames_to"])
        b = cfg["batch"]
        self.sampler = KeywordBatchSampler.from_cuts(
            cuts, keywords_per_batch=b["keywords"], utts_per_keyword=b["utts_per_keyword"],
            seed=cfg["seed"], rank=self.rank, world_size=self.world, few=b["few"])
        self.objective = KwsObjective(cfg, len(self.phones), len(self.keyword_ids)).to(self.device)
        self.module = self.objective
        if self.world > 1:
            self.module = nn.parallel.DistributedDataParallel(
                self.objective, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        o = cfg["optim"]
        # AdaMS scales are excluded from weight decay (model_spec section 3).
        no_decay = {id(p) for p in self.objective.no_weight_decay_parameters()}
        groups = [
            {"params": [p for p in self.objective.parameters() if id(p) not in no_decay]},
            {"params": [p for p in self.objective.parameters() if id(p) in no_decay], "weight_decay": 0.0},
        ]
        self.optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=o["lr"],
                                           weight_decay=o["weight_decay"])
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, o["lr_step_epochs"], o["lr_gamma"])
        self.amp_dtype = None
        if self.device.type == "cuda" and cfg["amp"] in ("auto", True, "bf16", "fp16"):
            bf16 = cfg["amp"] != "fp16" and torch.cuda.is_bf16_supported()
            self.amp_dtype = torch.bfloat16 if bf16 else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.epoch, self.step = 0, 0
        self.ckpt_dir = self.exp / "checkpoints"
        if resume:
            self._resume()
        if self.rank == 0:
            self.exp.mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.exp / "config.yaml")
            n_params = sum(p.numel() for p in self.objective.parameters())
            log.info("world %d, device %s, %d threads, %d training cuts, %d keywords, %d parameters",
                     self.world, self.device, threads, len(cuts), len(self.keyword_ids), n_params)

    def _setup_logging(self) -> None:
        (self.exp / "log").mkdir(parents=True, exist_ok=True)
        fmt = logging.Formatter(f"%(asctime)s [rank {self.rank}] %(message)s")
        handler = logging.FileHandler(self.exp / "log" / f"train.rank{self.rank}.log")
        handler.setFormatter(fmt)
        log.handlers = [handler]
        if self.rank == 0:
            console = logging.StreamHandler()
            console.setFormatter(fmt)
            log.addHandler(console)
        log.setLevel(logging.INFO)
        log.propagate = False

    # ------------------------------------------------------------------ checkpoints
    def _state(self, batches_done: int) -> dict:
        return {
            "model": self.objective.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "sampler": self.sampler.state_dict(batches_done=batches_done),
            "rng": _rng_state(),
            "epoch": self.epoch,
            "step": self.step,
            "config": self.cfg,
        }

    def save(self, name: str, batches_done: int) -> None:
        if self.rank != 0:
            return
        path = self.ckpt_dir / name
        with atomic_path(path) as tmp:
            torch.save(self._state(batches_done), tmp)
        keep = self.cfg["keep_checkpoints"]
        if keep:
            epochs = sorted(self.ckpt_dir.glob("epoch-*.pt"), key=lambda p: int(p.stem.split("-")[1]))
            for old in epochs[:-keep]:
                old.unlink()
        for old in self.ckpt_dir.glob("step-*.pt"):
            if old.name != name:
                old.unlink()  # a mid-epoch checkpoint is only needed until the next one

    def _resume(self) -> None:
        path = latest_checkpoint(self.ckpt_dir)
        if path is None:
            log.info("no checkpoint in %s; starting from scratch", self.ckpt_dir)
            return
        state = torch.load(path, map_location="cpu", weights_only=False)
        self.objective.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.sampler.load_state_dict(state["sampler"])
        _set_rng_state(state["rng"])
        self.epoch, self.step = state["sampler"]["epoch"], state["step"]
        log.info("resumed from %s: epoch %d, step %d", path, self.epoch, self.step)

    # ------------------------------------------------------------------ training
    def _metrics(self, record: dict) -> None:
        if self.rank == 0:
            with open(self.exp / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    def _to_device(self, batch: dict) -> dict:
        return {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v
                for k, v in batch.items()}

    def train_epoch(self) -> None:
        cfg = self.cfg
        self.sampler.set_epoch(self.epoch)
        start_batch = self.sampler.state_dict()["batches_done"]
        loader = torch.utils.data.DataLoader(
            self.dataset, sampler=self.sampler, batch_size=None, num_workers=cfg["num_workers"],
            persistent_workers=False)
        self.module.train()
        sums: dict[str, float] = {}
        n_utts, t_last, n_logged = 0, time.time(), 0
        done = start_batch
        total_steps = max(1, cfg["epochs"] * (start_batch + len(self.sampler)))
        for batch in loader:
            batch = self._to_device(batch)
            progress_terms = self.objective.set_progress(self.step / total_steps)
            autocast = (torch.autocast("cuda", dtype=self.amp_dtype) if self.amp_dtype
                        else nullcontext())
            with autocast:
                loss, terms = self.module(batch)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            gnorm = torch.nn.utils.clip_grad_norm_(self.objective.parameters(), cfg["optim"]["grad_clip"])
            self.scaler.step(self.optimizer)
            self.scaler.update()
            terms.update(self.objective.after_optimizer_step())
            terms.update(progress_terms)
            self.step += 1
            done += 1
            n_utts += len(batch["texts"]) * self.world
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + v
            n_logged += 1
            if self.step % cfg["log_interval"] == 0:
                elapsed = time.time() - t_last
                avg = {k: v / n_logged for k, v in sums.items()}
                rate = n_utts / max(elapsed, 1e-9)
                log.info("epoch %d step %d batch %d/%d lr %.2e | %s | grad %.2f | %.0f utt/s",
                         self.epoch, self.step, done, start_batch + len(self.sampler), self.lr,
                         " ".join(f"{k} {v:.4f}" for k, v in avg.items()), float(gnorm), rate)
                self._metrics({"epoch": self.epoch, "step": self.step, "lr": self.lr,
                               "utt_per_s": rate, **avg})
                sums, n_utts, n_logged, t_last = {}, 0, 0, time.time()
            every = cfg["checkpoint_every_steps"]
            if every and self.step % every == 0:
                self.save(f"step-{self.step}.pt", batches_done=done)

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def run(self) -> None:
        while self.epoch < self.cfg["epochs"]:
            t0 = time.time()
            self.train_epoch()
            self.scheduler.step()
            self.epoch += 1
            dev = self.evaluate_dev() if self.rank == 0 else None
            log.info("epoch %d done in %.1f s%s", self.epoch, time.time() - t0,
                     f"; dev AP {dev:.4f}" if dev is not None else "")
            self._metrics({"epoch": self.epoch, "step": self.step, "dev_ap": dev,
                           "epoch_seconds": time.time() - t0})
            # The sampler state of a finished epoch points at the start of the next one.
            self.sampler.set_epoch(self.epoch)
            self.save(f"epoch-{self.epoch}.pt", batches_done=0)
            if self.world > 1:
                dist.barrier()
        if self.world > 1:
            dist.destroy_process_group()

    @torch.inference_mode()
    def evaluate_dev(self) -> float | None:
        """AP on the dev trials (held-out utterances of the training voices), scored as stage 8
        scores: each distinct cut and keyword embedded once, cosine from the caches."""
        d = self.cfg["data"]
        if not d.get("dev") or not Path(d["dev"]).is_file() or not Path(d["dev_trials"]).is_file():
            return None
        from lhotse import CutSet

        from pyadml.data.trials import read_trials
        from pyadml.score.embed import embed_cuts, embed_texts, score_trials
        from pyadml.score.metrics import average_precision
        from pyadml.text import G2P

        self.objective.eval()
        model = KwsModel(self.objective.audio, self.objective.text)
        trials = read_trials(d["dev_trials"])
        audio = embed_cuts(model, CutSet.from_file(d["dev"]))
        # The lexicon was written by the same G2P, so its pronunciations agree.
        text = embed_texts(model, {t.keyword for t in trials}, self.phones, G2P())
        scores = score_trials(trials, audio, text)
        self.objective.train()
        return float(average_precision(scores, np.array([t.label for t in trials])))
