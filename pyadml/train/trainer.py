"""The trainer: K x M keyword batches, DDP over torchrun's processes, atomic checkpoints and
exact resumption (model, optimiser, scheduler, sampler and RNG states), per-step logging and the
dev AP after each epoch. The objective, the checkpoint files and the process-group setup live in
pyadml.train.objective, pyadml.train.checkpoints and pyadml.train.distributed."""

from __future__ import annotations

import copy
import json
import logging
import os
import random
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from pyadml.data.cuts import merge_homophones
from pyadml.data.dataset import KeywordDataset, read_keyword_ids
from pyadml.data.sampler import KeywordBatchSampler, keyword_neighbours
from pyadml.data.span_sampler import SpanRowsSampler, split_spans
from pyadml.models import KwsModel
from pyadml.text import Tokenizer
from pyadml.train.checkpoints import (archive_previous_run, latest_checkpoint,
                                      latest_valid_checkpoint, refuse_earlier_checkpoints,
                                      remove_temporaries, rng_state, save_checkpoint,
                                      set_rng_state, truncate_metrics)
from pyadml.train.config import config_changes, save_config
from pyadml.train.distributed import ExperimentLock, setup_distributed
from pyadml.train.ema import WeightAverages, ema_name
from pyadml.train.lifeline import die_with_parent
from pyadml.train.experiment import (ConfigChanged, check_data_config, check_feature_options,
                                     check_vtlp_range, copy_experiment_inputs,
                                     report_training_error)
from pyadml.train.baseline_objective import build_objective
from pyadml.train.objective import KwsObjective
from pyadml.train.optim import (amp_dtype, build_optimizer, check_grad_clip, clip_parameters,
                                grad_norm, group_lrs)

# KwsObjective, latest_checkpoint and setup_distributed are re-exported for older imports.
__all__ = ["Trainer", "KwsObjective", "latest_checkpoint", "setup_distributed", "ConfigChanged",
           "report_training_error"]

log = logging.getLogger("pyadml.train")


class Trainer:
    def __init__(self, cfg: dict, exp_dir: str | os.PathLike, resume: bool = False,
                 fresh: bool = False, allow_config_change: bool = False):
        """``resume``: continue from the newest valid checkpoint; a config that differs from
        the checkpoint's in a training-relevant key is an error naming the keys, unless
        ``allow_config_change`` (then the new values apply and are recorded). ``fresh``: move
        earlier checkpoints and metrics to ``previous/`` and start from scratch."""
        self.cfg = cfg
        self.exp = Path(exp_dir)
        # Workers exit when torchrun dies (pyadml.bin.train asks first thing; again here for
        # trainers started from other code).
        die_with_parent()
        self.rank, self.world, self.device = setup_distributed(cfg["device"])
        self.allow_config_change = allow_config_change
        if self.rank == 0:
            self._lock = ExperimentLock(self.exp / ".train.lock")
            if fresh:
                archive_previous_run(self.exp)
            remove_temporaries(self.exp / "checkpoints")
            if not resume and not fresh:
                refuse_earlier_checkpoints(self.exp)
        resume = resume and not fresh
        self._setup_logging()
        # steps/train.sh says how many cores each process has (the node's, or the Slurm allocation's).
        threads = (cfg["threads"] or int(os.environ.get("PYADML_TRAIN_THREADS", "0"))
                   or max(1, (os.cpu_count() or 1) // max(1, self.world)))
        torch.set_num_threads(threads)
        random.seed(cfg["seed"])
        np.random.seed(cfg["seed"])
        torch.manual_seed(cfg["seed"])

        from lhotse import CutSet

        d = check_data_config(cfg["data"])
        self.tokenizer = Tokenizer.from_lang_dir(d["lang"])
        self.keyword_ids = read_keyword_ids(Path(d["lang"]) / "keywords.txt")
        cuts = CutSet.from_file(d["train"]).to_eager()
        # The features are as data.fbank_config (which the model carries to scoring) makes
        # them, and fit the audio encoder; the dev set's too, read here once for every epoch.
        in_dim = cfg["model"]["audio"]["input_dim"]
        frame_shift = check_feature_options(cuts, "train", d["train"], d["fbank_config"], in_dim)
        check_vtlp_range(cfg["vtlp"], d["fbank_config"])
        self._dev = None  # the dev cuts and trials (rank 0, which scores them after each epoch)
        if self.rank == 0 and d["dev"] and d["dev_trials"]:
            from pyadml.data.trials import read_trials

            dev_cuts = list(CutSet.from_file(d["dev"]))
            check_feature_options(dev_cuts, "dev", d["dev"], d["fbank_config"], in_dim)
            self._dev = (dev_cuts, read_trials(d["dev_trials"]))
        b = cfg["batch"]
        if b["homophones"] not in ("keep", "merge"):
            raise ValueError(f"batch.homophones must be keep or merge, got {b['homophones']!r}")
        if b["homophones"] == "merge":
            merged_cuts, merged = merge_homophones(cuts, self.tokenizer.encode)
            cuts = CutSet.from_cuts(merged_cuts)
            log.info("homophones merged: %d spellings join another word's keyword class (%s)",
                     len(merged), ", ".join(f"{w}->{k}" for w, k in sorted(merged.items())[:8]))
        # The training voices, numbered in sorted order (loss.spk_adv only).
        speaker_ids = ({s: i for i, s in enumerate(sorted({c.supervisions[0].speaker for c in cuts
                                                           if c.supervisions[0].speaker}))}
                       if cfg["loss"]["spk_adv"] else None)
        self.dataset = KeywordDataset(cuts, self.tokenizer, self.keyword_ids,
                                      pad_multiple=cfg["pad_frames_to"], speaker_ids=speaker_ids,
                                      context_growth=b["context_growth"], seed=cfg["seed"],
                                      frame_shift=frame_shift,
                                      spec_augment=cfg["spec_augment"],
                                      text_negatives=cfg["loss"]["text_negatives"],
                                      vtlp=cfg["vtlp"], tempo=cfg["tempo"],
                                      floor_db=cfg["floor_db"])
        # Multi-word spans never enter the K x M keyword groups: batch.span_rows of them join
        # each batch as extra rows, or form batches of their own after every batch.span_every
        # keyword batches (pyadml.data.span_sampler); none with span_rows 0.
        word_cuts, span_cuts = split_spans(cuts)
        try:
            self.sampler = KeywordBatchSampler.from_cuts(
                word_cuts, keywords_per_batch=b["keywords"], utts_per_keyword=b["utts_per_keyword"],
                seed=cfg["seed"], rank=self.rank, world_size=self.world, few=b["few"],
                **keyword_neighbours(word_cuts, self.dataset.phone_ids, b["neighbours"],
                                     b["neighbour_pool"]))
        except ValueError as e:  # too few keywords for a batch: the set, not the code, is at fault
            raise ValueError(f"data.train {d['train']} ({len(word_cuts)} word cuts): {e}") from None
        if b["neighbours"] >= 2:
            log.info("batches in runs of %d phonetic neighbours (a keyword and words among its %d "
                     "nearest in phoneme edit distance)", b["neighbours"], b["neighbour_pool"])
        if b["span_rows"] and span_cuts:
            self.sampler = SpanRowsSampler(self.sampler, [c.id for c in span_cuts], b["span_rows"],
                                           every=b["span_every"])
        if span_cuts or b["span_rows"]:
            where = (f"a batch of them after every {b['span_every']} keyword batches"
                     if b["span_every"] else "rows added to every batch")
            log.info("%d multi-word span cuts; %d span rows (%s)", len(span_cuts),
                     b["span_rows"] if span_cuts else 0, where)
        # model.head: adml (KwsObjective) or a baseline detector (train.baseline_objective).
        self.objective = build_objective(cfg, len(self.tokenizer.phone_table),
                                         len(self.keyword_ids),
                                         len(speaker_ids or ())).to(self.device)
        if speaker_ids:
            log.info("speaker-adversarial term over %d training speakers, weight %g",
                     len(speaker_ids), cfg["loss"]["spk_adv"])
        self.module = self.objective
        if self.world > 1:
            self.module = nn.parallel.DistributedDataParallel(
                self.objective, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        o = cfg["optim"]
        # AdamW; the learnable AdaMS scales (paper section 3.1) in their own group: no weight
        # decay, optim.adams_lr. Clipping (optim.grad_clip, none by default as in the paper)
        # covers optim.grad_clip_scope's parameters only (pyadml.train.optim).
        self.optimizer = build_optimizer(self.objective, o)
        self.grad_clip = check_grad_clip(o["grad_clip"])
        self.clip_params = clip_parameters(self.objective, o["grad_clip_scope"])
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, o["lr_step_epochs"], o["lr_gamma"])
        self.amp_dtype = amp_dtype(cfg["amp"], self.device)  # the losses stay float32
        if cfg["compile"]:  # in place: state_dict keys unchanged
            self.objective.audio.compile()
            self.objective.text.compile()
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.ema = WeightAverages(self.objective, cfg["ema"]["decays"])
        self.epoch, self.step = 0, 0
        self._loader = None  # made at the first epoch (train_epoch)
        self.ckpt_dir = self.exp / "checkpoints"
        if resume:
            self._resume()
        if self.rank == 0 and self.step == 0:
            # A run from scratch: records left by an earlier one that died before its first
            # checkpoint are not this run's (it would log every step twice).
            dropped = truncate_metrics(self.exp / "metrics.jsonl", 0, 0)
            if dropped:
                log.info("metrics.jsonl: dropped %d record(s) of an earlier run that left no "
                         "checkpoint", dropped)
        if self.rank == 0:
            # Only now, past every check of the config (a resume's included): a refused run
            # leaves the experiment's lang/ and fbank.yaml as its checkpoints were trained with.
            self.exp.mkdir(parents=True, exist_ok=True)
            copy_experiment_inputs(d, self.exp, cfg["floor_db"])
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
            "rng": rng_state(),
            "ema": self.ema.state_dict() if self.ema else None,
            "epoch": self.epoch,
            "step": self.step,
            "config": self.cfg,
        }

    def save(self, name: str, batches_done: int) -> None:
        if self.rank != 0:
            return
        save_checkpoint(self._state(batches_done), self.ckpt_dir, name, self.cfg["keep_checkpoints"])

    def _resume(self) -> None:
        path, state = latest_valid_checkpoint(self.ckpt_dir)
        if path is None:
            log.info("no checkpoint in %s; starting from scratch", self.ckpt_dir)
            return
        changes = config_changes(state.get("config") or {}, self.cfg)
        if changes and not self.allow_config_change:
            listed = "; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in
                               ((k, *v) for k, v in changes.items()))
            raise ConfigChanged(
                f"{self.exp}: the training config differs from the checkpoint {path.name} in "
                f"{listed}. Start a new experiment (another --tag, or run.sh --force true for "
                f"stage 6, which starts this one afresh), or resume with the new values "
                f"(steps/train.sh --allow-config-change true)")
        self.objective.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.sampler.load_state_dict(state["sampler"])
        set_rng_state(state["rng"])
        fresh = self.ema.load_state_dict(state.get("ema"))
        if fresh:
            log.warning("the checkpoint has no weight average for decay(s) %s: they start from "
                        "its weights", fresh)
        self.epoch, self.step = state["sampler"]["epoch"], state["step"]
        if changes:
            self._apply_config_changes(changes)
        if self.rank == 0:
            truncate_metrics(self.exp / "metrics.jsonl", self.step, self.epoch)
        log.info("resumed from %s: epoch %d, step %d", path, self.epoch, self.step)

    def _apply_config_changes(self, changes: dict) -> None:
        """The optimiser and scheduler take the new values (the loss terms read the config
        directly); the change is logged and recorded in config_changes.jsonl."""
        o = self.cfg["optim"]
        self.scheduler.step_size, self.scheduler.gamma = o["lr_step_epochs"], o["lr_gamma"]
        self.scheduler.base_lrs = group_lrs(o, len(self.optimizer.param_groups))
        factor = o["lr_gamma"] ** (self.scheduler.last_epoch // o["lr_step_epochs"])
        for i, (g, lr) in enumerate(zip(self.optimizer.param_groups, self.scheduler.base_lrs)):
            g["initial_lr"], g["lr"] = lr, lr * factor
            if i == 0:  # the no-weight-decay group keeps 0
                g["weight_decay"] = o["weight_decay"]
        for k, (a, b) in changes.items():
            log.warning("config change on resume: %s %r -> %r", k, a, b)
        if self.rank == 0:
            with open(self.exp / "config_changes.jsonl", "a") as f:
                f.write(json.dumps({"step": self.step, "epoch": self.epoch,
                                    "changes": {k: list(v) for k, v in changes.items()}}) + "\n")

    # ------------------------------------------------------------------ training
    def _metrics(self, record: dict) -> None:
        """A record of metrics.jsonl, and its scalars in exp/<tag>/tensorboard (rank 0)."""
        if self.rank == 0:
            with open(self.exp / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            tb = getattr(self, "_tb", None)
            if tb is not None:
                tb.write(record)

    def _to_device(self, batch: dict) -> dict:
        return {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v
                for k, v in batch.items()}

    def train_epoch(self) -> None:
        cfg = self.cfg
        self.sampler.set_epoch(self.epoch)
        start_batch = self.sampler.state_dict()["batches_done"]
        if self._loader is None:
            # One loader for the run: its worker is forked once. A worker forked afresh each
            # epoch from the trained process slowed that epoch's steps (RESULTS.md, "Benchmark").
            self._loader = torch.utils.data.DataLoader(
                self.dataset, sampler=self.sampler, batch_size=None,
                num_workers=cfg["num_workers"], persistent_workers=cfg["num_workers"] > 0)
        elif self._loader.persistent_workers:
            # A fresh loader draws its workers' base seed from the global RNG every epoch; draw
            # it here too, so the losses' random draws (and every figure) stay as they were.
            torch.empty((), dtype=torch.int64).random_()
        loader = self._loader
        self.module.train()
        sums: dict[str, float] = {}
        n_utts, t_last, n_logged = 0, time.time(), 0
        done = start_batch
        total_steps = max(1, cfg["epochs"] * (start_batch + len(self.sampler)))
        console = getattr(self, "_progress", None)  # set by run() on rank 0
        if console is not None:
            console.start_epoch(self.epoch, self.step, start_batch, start_batch + len(self.sampler))
        for batch in loader:
            batch = self._to_device(batch)
            progress_terms = self.objective.set_progress(self.step / total_steps)
            autocast = (torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype
                        else nullcontext())
            with autocast:
                loss, terms = self.module(batch)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            gnorm = grad_norm(self.clip_params, self.grad_clip)  # logged; clipped if set
            self.scaler.step(self.optimizer)
            self.scaler.update()
            terms.update(self.objective.after_optimizer_step())
            self.ema.update()
            terms.update(progress_terms)
            self.step += 1
            done += 1
            n_utts += len(batch["texts"]) * self.world
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + v
            n_logged += 1
            logging_now = self.step % cfg["log_interval"] == 0
            if console is not None:
                console.step(len(batch["texts"]) * self.world,
                             loss=sums["loss"] / n_logged if logging_now and "loss" in sums else None)
            if logging_now:
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
        if self.rank == 0:
            # Console progress (pyadml.train.progress: run_stage's console, else stderr) and
            # TensorBoard scalars (pyadml.train.tensorboard), rank 0 only.
            from pyadml.train.progress import TrainProgress
            from pyadml.train.tensorboard import ScalarLog

            d = self.cfg["data"]
            self._progress = TrainProgress(self.cfg["epochs"], self.step,
                                           dev=bool(d.get("dev") and d.get("dev_trials")))
            self._tb = ScalarLog(self.exp / "tensorboard", purge_step=self.step, log=log)
        try:
            self._run_epochs()
        finally:
            for name in ("_progress", "_tb"):
                if getattr(self, name, None) is not None:
                    getattr(self, name).close()
                    setattr(self, name, None)

    def _run_epochs(self) -> None:
        while self.epoch < self.cfg["epochs"]:
            t0 = time.time()
            self.train_epoch()
            self.scheduler.step()
            self.epoch += 1
            t_dev = time.time()
            dev = self.evaluate_dev() if self.rank == 0 else None
            averages = {}
            if dev is not None:
                for i, d in enumerate(self.ema.decays):
                    averages[f"dev_ap_{ema_name(d)}"] = self.evaluate_dev(self.ema.averaged_state(i))
            t_dev = time.time() - t_dev
            log.info("epoch %d done in %.1f s%s%s", self.epoch, time.time() - t0,
                     f"; dev AP {dev:.4f}" if dev is not None else "",
                     "".join(f", {k[7:]} {v:.4f}" for k, v in averages.items()))
            self._metrics({"epoch": self.epoch, "step": self.step, "dev_ap": dev, **averages,
                           "epoch_seconds": time.time() - t0})
            if getattr(self, "_progress", None) is not None:
                self._progress.epoch_done(self.epoch, time.time() - t0, dev, t_dev)
            if getattr(self, "_tb", None) is not None:
                self._tb.flush()
            # The sampler state of a finished epoch points at the start of the next one.
            self.sampler.set_epoch(self.epoch)
            self.save(f"epoch-{self.epoch}.pt", batches_done=0)
            if self.world > 1:
                dist.barrier()
        if self.world > 1:
            dist.destroy_process_group()

    @torch.inference_mode()
    def evaluate_dev(self, state: dict | None = None) -> float | None:
        """AP on the dev trials (held-out utterances of the training voices), scored as stage 8
        scores: each distinct cut and keyword embedded once, cosine from the caches. ``state``:
        score these weights of the objective (a weight average) instead of the live ones."""
        d = self.cfg["data"]
        if not d["dev"] or not d["dev_trials"]:
            return None
        from pyadml.score.embed import trials_ap

        if self._dev is None:  # read once (__init__ reads it on rank 0), scored every epoch
            from lhotse import CutSet

            from pyadml.data.trials import read_trials

            self._dev = (list(CutSet.from_file(d["dev"])), read_trials(d["dev_trials"]))
        objective = self.objective
        if state is not None:
            objective = copy.deepcopy(self.objective)
            objective.load_state_dict(state)
        objective.eval()
        model = KwsModel(objective.audio, objective.text, head=getattr(objective, "head", None))
        ap = trials_ap(model, *self._dev, self.tokenizer, floor_db=self.cfg["floor_db"])
        objective.train()
        return ap
