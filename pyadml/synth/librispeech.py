"""A miniature LibriSpeech with word alignments, in LibriSpeech's real layout (stage 0 of
egs/librispeech_libriphrase).

::

    librispeech/LibriSpeech/SPEAKERS.TXT
    librispeech/LibriSpeech/<subset>/<spk>/<chapter>/<spk>-<chapter>-<utt>.flac
    librispeech/LibriSpeech/<subset>/<spk>/<chapter>/<spk>-<chapter>.trans.txt      (upper case)
    librispeech/LibriSpeech/<subset>/<spk>/<chapter>/<spk>-<chapter>.alignment.txt  (librispeech-
        alignments' format; with alignment_format: textgrid, <utt>.TextGrid files as MFA writes)

Everything but the layout is stage 0's own: the voices, prosody, audio rule and vocabulary of
``conf/synth.yaml`` (pyadml.synth.corpora), utterances planned by its word-joining planner and
rendered by pyadml.synth.render, so that alignments are exact on a 10 ms grid. Speakers are
numbered as LibriSpeech numbers them (a stable number per voice). The training subsets
(``train-clean-100``, ``train-clean-360``) share out the training voices, one subset per voice
as in LibriSpeech; ``train-other-500``, where LibriPhrase's test pairs come from, is spoken by
the held-out voices, which also speak the LibriPhrase stand-in: its CSVs' speaker columns are
rewritten to the same LibriSpeech numbers (:func:`relabel_libriphrase`), so the recipe's
train/test speaker check sees what it would see on the real corpora. ``test-clean`` (the
continuous speech of stage 9) is spoken by the held-out voices too, under numbers of their own:
in LibriSpeech a speaker belongs to one subset only.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import yaml

from pyadml.fileio import write_lines_atomic, write_text_atomic
from pyadml.synth.corpora import (audio_config, make_vocabulary, marker_is_current, marker_text,
                                  repeat_to, word_utterances)
from pyadml.synth.render import drop_report, render
from pyadml.synth.voices import SAMPLE_RATE, Voice

log = logging.getLogger(__name__)

# The order fixes each subset's random stream and the speakers' numbering: new subsets go last.
SUBSETS = ("train-clean-100", "train-clean-360", "train-other-500", "test-clean")
HELDOUT_SUBSETS = ("train-other-500", "test-clean")
_KEYS = {"common", "chapter_utterances", "unknown_share", "alignment_format", "sizes"}
_SUBSET_KEYS = {"tokens", "max_words"}


def load_librispeech_config(path: str | Path, common: dict[str, Any], size: str) -> dict[str, Any]:
    """Read conf/synth_librispeech.yaml for one size; ``common`` is the resolved stage-0
    config (pyadml.synth.corpora.load_config) whose voices, audio and vocabulary it uses."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"LibriSpeech synth config {path} does not exist")
    raw = yaml.safe_load(path.read_text()) or {}
    unknown = set(raw) - _KEYS
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}; expected {sorted(_KEYS)}")
    sizes = raw.get("sizes") or {}
    if size not in sizes:
        raise ValueError(f"{path}: no size {size!r}; it defines {sorted(sizes)}")
    subsets = sizes[size] or {}
    for name, spec in subsets.items():
        if name not in SUBSETS:
            raise ValueError(f"{path}: sizes.{size}.{name}: not a subset this stand-in makes {SUBSETS}")
        bad = set(spec or {}) - _SUBSET_KEYS
        if bad:
            raise ValueError(f"{path}: sizes.{size}.{name}: unknown keys {sorted(bad)}")
    fmt = raw.get("alignment_format", "txt")
    if fmt not in ("txt", "textgrid"):
        raise ValueError(f"{path}: alignment_format must be txt or textgrid, got {fmt!r}")
    cfg = copy.deepcopy(common)
    cfg["librispeech"] = {
        "subsets": {k: {"tokens": int(v.get("tokens", 0)), "max_words": int(v.get("max_words", 10))}
                    for k, v in subsets.items() if v and int(v.get("tokens", 0)) > 0},
        "chapter_utterances": int(raw.get("chapter_utterances", 20)),
        "unknown_share": float(raw.get("unknown_share", 0.0)),
        "alignment_format": fmt,
    }
    return cfg


def speaker_number(voice: Voice | str) -> int:
    """A LibriSpeech-like speaker number, stable per voice (or :func:`speaker_key`)."""
    key = voice if isinstance(voice, str) else voice.speaker_id
    return 100 + int(hashlib.sha1(key.encode()).hexdigest(), 16) % 9800


def speaker_key(voice: Voice, subset: str) -> str:
    """The key of ``voice`` speaking ``subset`` in :func:`speaker_numbers`: its speaker id, but in
    test-clean, where the held-out voices speak again as other speakers, ``test-clean/<id>``
    (never a LibriPhrase speaker column)."""
    return f"{subset}/{voice.speaker_id}" if subset == "test-clean" else voice.speaker_id


def speaker_numbers(cfg: dict[str, Any]) -> dict[str, str]:
    """:func:`speaker_key` -> LibriSpeech number for every voice of the config (distinct), and for
    the held-out voices again as test-clean's speakers; those come last, so adding them changed
    no other number."""
    out: dict[str, str] = {}
    keys = [v.speaker_id for v in cfg["voices"]["train"] + cfg["voices"]["heldout"]]
    keys += [speaker_key(v, "test-clean") for v in cfg["voices"]["heldout"]]
    taken: set[str] = set()
    for key in keys:
        n = speaker_number(key)
        while str(n) in taken:  # a hash collision: the next free number
            n += 1
        out[key] = str(n)
        taken.add(str(n))
    return out


def _sex(voice: Voice) -> str:
    name = voice.name.lower()
    if voice.engine == "kokoro":  # the style with the largest share: ?f_* female, ?m_* male
        from pyadml.synth.neural import StyleBlend

        return "F" if max(StyleBlend.parse(name).parts, key=lambda p: p[1])[0][1] == "f" else "M"
    return "F" if "+f" in name or "slt" in name else "M"


def subset_voices(cfg: dict[str, Any], subset: str) -> list[Voice]:
    """The clean training subsets share out the training voices (alternately, in the config's
    order); train-other-500 and test-clean have the held-out ones."""
    if subset in HELDOUT_SUBSETS:
        return list(cfg["voices"]["heldout"])
    k = SUBSETS.index(subset)
    return [v for i, v in enumerate(cfg["voices"]["train"]) if i % 2 == k]


def _digest(cfg: dict[str, Any]) -> str:
    keys = ("seed", "voices", "engine_weights", "heldout_engine_weights", "audio", "prosody",
            "vocabulary", "librispeech")
    blob = json.dumps({k: cfg.get(k) for k in keys}, default=str, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def is_complete(out_dir: str | Path, cfg: dict[str, Any]) -> bool:
    return marker_is_current(Path(out_dir) / "librispeech" / ".complete", _digest(cfg), cfg)


def _alignment_line(utt: str, words: list[tuple[str, int, int]], n_samples: int) -> str:
    """librispeech-alignments: words (empty = silence) and their end times, from 0."""
    syms, ends, pos = [], [], 0
    for w, start, length in words:
        if start > pos:
            syms.append("")
            ends.append(start)
        syms.append(w)
        ends.append(start + length)
        pos = start + length
    if n_samples > pos:
        syms.append("")
        ends.append(n_samples)
    times = ",".join(f"{e / SAMPLE_RATE:.3f}" for e in ends)
    return f'{utt} "{",".join(syms)}" "{times}"'


def _textgrid(words: list[tuple[str, int, int]], n_samples: int) -> str:
    """A long-format TextGrid with a 'words' tier as MFA writes it (silence as empty text)."""
    intervals, pos = [], 0
    for w, start, length in words:
        if start > pos:
            intervals.append((pos, start, ""))
        intervals.append((start, start + length, w))
        pos = start + length
    if n_samples > pos:
        intervals.append((pos, n_samples, ""))
    xmax = n_samples / SAMPLE_RATE
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0",
             f"xmax = {xmax:.3f}", "tiers? <exists>", "size = 1", "item []:", "    item [1]:",
             '        class = "IntervalTier"', '        name = "words"', "        xmin = 0",
             f"        xmax = {xmax:.3f}", f"        intervals: size = {len(intervals)}"]
    for k, (a, b, w) in enumerate(intervals, 1):
        lines += [f"        intervals [{k}]:", f"            xmin = {a / SAMPLE_RATE:.3f}",
                  f"            xmax = {b / SAMPLE_RATE:.3f}", f'            text = "{w}"']
    return "\n".join(lines) + "\n"


def build_subset(cfg: dict[str, Any], vocab, subset: str, root: Path, scratch: Path, nj: int,
                 numbers: dict[str, str]) -> dict:
    """One subset under ``root/LibriSpeech/<subset>``; returns its statistics."""
    ls = cfg["librispeech"]
    spec = ls["subsets"][subset]
    rng = np.random.default_rng([int(cfg["seed"]), 1000 + SUBSETS.index(subset)])
    voices = subset_voices(cfg, subset)
    heldout = subset in HELDOUT_SUBSETS
    sub_cfg = copy.deepcopy(cfg)
    sub_cfg["voices"] = {"train": voices if not heldout else cfg["voices"]["train"],
                         "heldout": voices if heldout else cfg["voices"]["heldout"]}
    # Training words only: the words never in training stay unseen for the test sets; the
    # training-only words (extra_train_types) never reach the held-out subset.
    tokens = repeat_to(vocab.train if heldout else vocab.training, spec["tokens"])
    items = word_utterances(sub_cfg, tokens, None, heldout, spec["max_words"], rng, "", "{utt}.wav")
    # LibriSpeech ids: <spk>-<chapter>-<utt>, chapters of chapter_utterances utterances.
    per_spk: dict[str, int] = {}
    where: dict[str, tuple[str, str, str]] = {}  # item id -> (spk, chapter, utt id)
    for it in items:
        spk = numbers[speaker_key(it.voice, subset)]
        k = per_spk[spk] = per_spk.get(spk, -1) + 1
        chapter = f"{spk}{k // ls['chapter_utterances']:02d}"
        utt = f"{spk}-{chapter}-{k % ls['chapter_utterances']:04d}"
        where[it.id] = (spk, chapter, utt)
        it.rel_path = f"{subset}/{utt}.wav"
    rendered = render(items, scratch, audio_config(cfg), nj=nj,
                      progress=f"synth librispeech {subset}")
    dropped = drop_report(items)
    items = [it for it in items if it.id in rendered]  # an utterance no word of which was spoken
    # A share of the aligned words (at least one when the share is not 0) is <unk>.
    n_words = sum(len(rendered[it.id].words) for it in items)
    n_unk = min(n_words, max(1, round(ls["unknown_share"] * n_words))) if ls["unknown_share"] > 0 else 0
    unknown = set(rng.choice(n_words, size=n_unk, replace=False).tolist()) if n_unk else set()
    k_word = 0
    chapters: dict[tuple[str, str], list[tuple[str, Any, Any]]] = {}
    for it in items:
        spk, chapter, utt = where[it.id]
        r = rendered[it.id]
        audio, sr = sf.read(str(scratch / r.rel_path), dtype="int16")
        dest = root / "LibriSpeech" / subset / spk / chapter / f"{utt}.flac"
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".tmp")
        sf.write(str(tmp), audio, sr, format="FLAC", subtype="PCM_16")
        tmp.rename(dest)
        # The aligner's view: upper case, as librispeech-alignments writes (MFA: lower case);
        # a share of words it could not align are <unk> there, never in the transcript.
        ali_words = []
        for w, start, length in r.words:
            unk = k_word in unknown
            k_word += 1
            sym = "<unk>" if unk else (w.upper() if ls["alignment_format"] == "txt" else w.lower())
            ali_words.append((sym, start, length))
        chapters.setdefault((spk, chapter), []).append((utt, it, (ali_words, r.num_samples)))
    for (spk, chapter), utts in sorted(chapters.items()):
        d = root / "LibriSpeech" / subset / spk / chapter
        utts.sort(key=lambda x: x[0])
        write_lines_atomic(d / f"{spk}-{chapter}.trans.txt",
                           (f"{u} {' '.join(it.words).upper()}" for u, it, _ in utts))
        if ls["alignment_format"] == "txt":
            write_lines_atomic(d / f"{spk}-{chapter}.alignment.txt",
                               (_alignment_line(u, w, n) for u, _, (w, n) in utts))
        else:
            for u, _, (w, n) in utts:
                write_text_atomic(d / f"{u}.TextGrid", _textgrid(w, n))
    secs = sum(r.num_samples for r in rendered.values()) / SAMPLE_RATE
    return {"utterances": len(items), "speakers": len(per_spk), "chapters": len(chapters),
            "word_tokens": len(tokens), "unknown_in_alignment": int(n_unk),
            "hours": round(secs / 3600, 4), "minutes_per_speaker": {
                s: round(sum(rendered[i.id].num_samples for i in items
                             if numbers[speaker_key(i.voice, subset)] == s) / SAMPLE_RATE / 60, 2)
                for s in sorted(per_spk)}} | dropped


def write_speakers(path: Path, cfg: dict[str, Any], numbers: dict[str, str], stats: dict) -> None:
    """SPEAKERS.TXT as LibriSpeech ships it: ``ID | SEX | SUBSET | MINUTES | NAME``."""
    lines = ["; Speakers of the synthesised LibriSpeech stand-in (pyadml stage 0); NAME is the TTS voice.",
             ";ID  |SEX| SUBSET           |MINUTES| NAME"]
    # Every voice has its row, in the subset it belongs to (the held-out voices, which speak
    # the LibriPhrase stand-in, in train-other-500), with 0 minutes where it spoke nothing;
    # test-clean's speakers (the held-out voices again) have rows when it was made.
    rows = []
    for subset in SUBSETS:
        if subset == "test-clean" and subset not in stats:
            continue
        minutes = stats.get(subset, {}).get("minutes_per_speaker", {})
        for v in subset_voices(cfg, subset):
            spk = numbers[speaker_key(v, subset)]
            rows.append((int(spk), f"{spk:<5}| {_sex(v)} | {subset:<17}| {minutes.get(spk, 0.0):5.2f} | "
                                   f"{v.engine}:{v.name}"))
    write_lines_atomic(path, lines + [r for _, r in sorted(rows)])


def build_librispeech(cfg: dict[str, Any], out_dir: str | Path, nj: int = 1) -> dict:
    """``out_dir/librispeech/LibriSpeech/...``; skipped when complete with the same settings."""
    out_dir = Path(out_dir).resolve()
    final = out_dir / "librispeech"
    if is_complete(out_dir, cfg):
        log.info("librispeech: complete (%s); skipping", final / ".complete")
        return json.loads((final / ".complete").read_text())["stats"] | {"skipped": True}
    t0 = time.time()
    tmp = out_dir / ".librispeech.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    scratch = tmp / ".wav"
    numbers = speaker_numbers(cfg)
    vocab = make_vocabulary(cfg)
    stats = {}
    for subset in SUBSETS:
        if subset in cfg["librispeech"]["subsets"]:
            stats[subset] = build_subset(cfg, vocab, subset, tmp, scratch, nj, numbers)
    shutil.rmtree(scratch, ignore_errors=True)
    write_speakers(tmp / "LibriSpeech" / "SPEAKERS.TXT", cfg, numbers, stats)
    summary = {s: {k: v for k, v in st.items() if k != "minutes_per_speaker"} for s, st in stats.items()}
    summary["build_seconds"] = round(time.time() - t0, 1)
    write_text_atomic(tmp / "README", (
        "LibriSpeech stand-in: LibriSpeech/<subset>/<spk>/<chapter>/ with .flac audio, upper-case "
        "<spk>-<chapter>.trans.txt and word alignments (librispeech-alignments' .alignment.txt or "
        f"MFA TextGrids), SPEAKERS.TXT. Synthesised by pyadml stage 0 (python -m "
        f"pyadml.bin.make_synth_librispeech), size '{cfg['size']}', seed {cfg['seed']}.\n"))
    write_text_atomic(tmp / ".complete", marker_text(_digest(cfg), cfg, summary))
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    return summary


def relabel_libriphrase(libriphrase_dir: str | Path, numbers: dict[str, str]) -> int:
    """Rewrite the ``anchor_spk``/``comparison_spk`` columns of the LibriPhrase stand-in's CSVs
    from voice names to their LibriSpeech numbers (idempotent); returns the rows changed."""
    changed = 0
    for path in sorted((Path(libriphrase_dir) / "data").glob("libriphrase_diffspk_all_*word.csv")):
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        header, n_before = rows[0], changed
        cols = [header.index(c) for c in ("anchor_spk", "comparison_spk")]
        for row in rows[1:]:
            hit = False
            for c in cols:
                if row[c] in numbers:
                    row[c] = numbers[row[c]]
                    hit = True
            changed += hit
        if changed > n_before:
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerows(rows)
            write_text_atomic(path, buf.getvalue())
    return changed
