"""The embedded corpora of stage 0, written in the real corpora's on-disk layouts.

- king_asr_066: Kaldi data directory + word CTM, training voices (King-ASR-066's place);
- wsj: NIST SPHERE ``.wv1`` files in an LDC-like tree with ``.dot`` transcripts, plus a Kaldi
  data directory and word CTM, held-out voices;
- libriphrase: the official CSV names and columns with 16 kHz wav segments, held-out voices;
- musan, rirs_noises: see pyadml.synth.noise and pyadml.synth.rooms.

Each corpus is built in a temporary directory and renamed into place when complete, with a
``.complete`` marker holding the hash of the settings that made it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import yaml

from pyadml.fileio import write_lines_atomic, write_text_atomic
from pyadml.synth.render import HOP, AudioConfig, Item, Rendered, drop_report, render
from pyadml.synth.voices import (SAMPLE_RATE, TIMED_ENGINES, Prosody, SynthesisError, Voice,
                                 check_engines, espeak_voice_name)
from pyadml.synth.vocabulary import frequent_words

log = logging.getLogger(__name__)

CORPORA = ("king_asr_066", "wsj", "libriphrase", "musan", "rirs_noises")
LIBRIPHRASE_COLUMNS = (
    "anchor", "anchor_spk", "anchor_text", "anchor_dur", "comparison", "comparison_spk",
    "comparison_text", "comparison_dur", "type", "target", "class",
)
LIBRIPHRASE_TYPES = ("diffspk_positive", "diffspk_easyneg", "diffspk_hardneg")
_COMMON_KEYS = {"seed", "voices", "engine_weights", "heldout_engine_weights", "audio", "prosody",
                "sizes", "connected"}
_SIZE_KEYS = {"vocabulary", "king_asr_066", "wsj", "libriphrase", "musan", "rirs_noises"}


# ----------------------------------------------------------------------------------------------
# configuration


def load_config(path: str | Path, size: str, seed: int | None = None) -> dict[str, Any]:
    """Read conf/synth.yaml and resolve one size (``mini``, ``tiny``) into a flat dict."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"synth config {path} does not exist")
    raw = yaml.safe_load(path.read_text())
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    unknown = set(raw) - _COMMON_KEYS
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}; expected {sorted(_COMMON_KEYS)}")
    sizes = raw.get("sizes") or {}
    if size not in sizes:
        raise ValueError(f"{path}: no size {size!r}; it defines {sorted(sizes)}")
    cfg = {k: v for k, v in raw.items() if k != "sizes"}
    unknown = set(sizes[size]) - _SIZE_KEYS
    if unknown:
        raise ValueError(f"{path}: sizes.{size} has unknown keys {sorted(unknown)}")
    cfg.update(sizes[size])
    cfg["size"] = size
    if seed is not None:
        cfg["seed"] = seed
    for group in ("train", "heldout"):
        cfg["voices"][group] = [Voice.parse(s) for s in cfg["voices"][group]]
    connected = cfg.get("connected") or {}
    if not isinstance(connected, dict):
        raise ValueError(f"{path}: connected must map engines to shares, e.g. {{espeak: 0.5}}")
    for engine, share in connected.items():
        if engine not in TIMED_ENGINES:
            raise ValueError(f"{path}: connected.{engine}: only {', '.join(TIMED_ENGINES)} can "
                             f"speak connected utterances with word times")
        if not isinstance(share, (int, float)) or not 0 <= share <= 1:
            raise ValueError(f"{path}: connected.{engine} must be a share in [0, 1], got {share!r}")
    cfg["connected"] = connected
    train_ids = {v.speaker_id for v in cfg["voices"]["train"]}
    overlap = train_ids & {v.speaker_id for v in cfg["voices"]["heldout"]}
    if overlap:
        raise ValueError(f"{path}: voices both in training and held out: {sorted(overlap)}")
    return cfg


def _digest(cfg: dict[str, Any], name: str) -> str:
    keys = {"seed", "voices", "engine_weights", "heldout_engine_weights", "audio", "prosody",
            "vocabulary", name}
    settings = {k: cfg.get(k) for k in sorted(keys)}
    if cfg.get("connected") and name == "king_asr_066":
        # Connected speech is for training utterances only: the test sets do not change.
        settings["connected"] = cfg["connected"]
    if name != "king_asr_066" and settings["vocabulary"]:
        # Training-only words change no other corpus: trying them must not re-synthesise the
        # test sets.
        settings["vocabulary"] = {k: v for k, v in settings["vocabulary"].items()
                                  if k != "extra_train_types"}
    blob = json.dumps(settings, default=str, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def espeak_renamed(cfg: dict[str, Any]) -> dict[str, str] | None:
    """{espeak voice: the name espeak-ng is given} where they differ (voices.espeak_voice_name);
    None without espeak-ng (a corpus copied to another machine)."""
    if not shutil.which("espeak-ng"):
        return None
    voices = cfg.get("voices") or {}
    out = {}
    for v in voices.get("train", []) + voices.get("heldout", []):  # Voice, as load_config gives
        if v.engine != "espeak":
            continue
        try:
            given = espeak_voice_name(v.name)
        except SynthesisError:
            continue
        if given != v.name:
            out[v.name] = given
    return out


def _rng(cfg: dict[str, Any], name: str) -> np.random.Generator:
    # One stream per corpus, so building one corpus never changes another.
    return np.random.default_rng([int(cfg["seed"]), CORPORA.index(name)])


def audio_config(cfg: dict[str, Any]) -> AudioConfig:
    a = cfg.get("audio", {})
    return AudioConfig(
        trim_db=float(a.get("trim_db", 40.0)),
        trim_margin=float(a.get("trim_margin", 0.02)),
        dither=float(a.get("dither", 1e-4)),
        peak_dbfs=tuple(a.get("peak_dbfs", (-9.0, -1.0))),
    )


# ----------------------------------------------------------------------------------------------
# vocabulary and plans


@dataclass(frozen=True)
class Vocabulary:
    train: list[str]  # words the training corpus uses and the test sets draw their seen words from
    unseen: list[str]  # words never in training, for open-vocabulary evaluation
    extra: tuple[str, ...] = ()  # training-only words, never in a test set

    @property
    def training(self) -> list[str]:
        return sorted(self.train + list(self.extra))


def make_vocabulary(cfg: dict[str, Any]) -> Vocabulary:
    v = cfg["vocabulary"]
    unknown = set(v) - {"train_types", "unseen_types", "extra_train_types"}
    if unknown:
        raise ValueError(f"vocabulary: unknown keys {sorted(unknown)}; expected train_types, "
                         "unseen_types and optionally extra_train_types")
    n_train, n_unseen = int(v["train_types"]), int(v["unseen_types"])
    n_extra = int(v.get("extra_train_types", 0))
    if min(n_train, n_unseen, n_extra) < 0:
        raise ValueError(f"vocabulary: type counts must be >= 0, got {dict(v)}")
    # The extra words come from the next frequency band, so the first n_train + n_unseen words,
    # their split and every test set drawn from them stay as they are.
    words = frequent_words(n_train + n_unseen + n_extra)
    extra = tuple(sorted(words[n_train + n_unseen:]))
    words = words[: n_train + n_unseen]
    rng = np.random.default_rng([int(cfg["seed"]), 99])
    # Unseen words come from the same frequency band as training words, not from its tail.
    order = rng.permutation(len(words))
    unseen = sorted(words[i] for i in order[:n_unseen])
    train = sorted(words[i] for i in order[n_unseen:])
    return Vocabulary(train=train, unseen=unseen, extra=extra)


def _prosody(cfg: dict[str, Any], voice: Voice, rng: np.random.Generator) -> Prosody:
    p = cfg.get("prosody", {})
    lo, hi = p.get("speed", (0.85, 1.15))
    speed = float(rng.uniform(lo, hi))
    pitch = 0.0
    if voice.engine in ("espeak", "flite"):
        lo, hi = p.get("pitch_espeak" if voice.engine == "espeak" else "pitch_flite_hz", (-10, 10))
        pitch = float(rng.uniform(lo, hi))
    return Prosody(speed=round(speed, 4), pitch=round(pitch, 2))


def _pick_voices(cfg: dict[str, Any], n: int, rng: np.random.Generator,
                 group: str = "train") -> list[Voice]:
    """Voices for ``n`` utterances: an engine by ``engine_weights`` (``heldout_engine_weights``
    for the held-out group), then a voice of it. Held-out voices without such weights are drawn
    uniformly, as before the neural engines came."""
    voices = cfg["voices"][group]
    if group == "heldout" and not cfg.get("heldout_engine_weights"):
        return [voices[i] for i in rng.integers(len(voices), size=n)]
    key = "engine_weights" if group == "train" else "heldout_engine_weights"
    engines = sorted({v.engine for v in voices})
    weights = np.array([float(cfg.get(key, {}).get(e, 1.0)) for e in engines])
    by_engine = {e: [v for v in voices if v.engine == e] for e in engines}
    picked = rng.choice(len(engines), size=n, p=weights / weights.sum())
    return [by_engine[engines[e]][rng.integers(len(by_engine[engines[e]]))] for e in picked]


def _voice_weights(cfg: dict[str, Any], group: str) -> dict[Voice, float] | None:
    """Each voice's share under the group's engine weights; None for uniform held-out voices."""
    key = "engine_weights" if group == "train" else "heldout_engine_weights"
    if group == "heldout" and not cfg.get(key):
        return None
    voices = cfg["voices"][group]
    n = {e: sum(v.engine == e for v in voices) for e in {v.engine for v in voices}}
    return {v: float(cfg.get(key, {}).get(v.engine, 1.0)) / n[v.engine] for v in voices}


def word_utterances(
    cfg: dict[str, Any], tokens: list[str], voices: list[Voice] | None, heldout: bool,
    max_words: int, rng: np.random.Generator, prefix: str, ext: str,
) -> list[Item]:
    """Cut a shuffled token list into utterances of 1..max_words words, one speaker each."""
    tokens = [tokens[i] for i in rng.permutation(len(tokens))]
    lengths = []
    while sum(lengths) < len(tokens):
        lengths.append(int(rng.integers(1, max_words + 1)))
    lengths[-1] -= sum(lengths) - len(tokens)
    voices = _pick_voices(cfg, len(lengths), rng, "heldout" if heldout else "train")
    a = cfg.get("audio", {})
    p_lo, p_hi = a.get("pause", (0.05, 0.35))
    e_lo, e_hi = a.get("edge_silence", (0.05, 0.3))
    d_lo, d_hi = audio_config(cfg).peak_dbfs
    items, pos, counters = [], 0, {}
    for n, voice in zip(lengths, voices):
        words = tokens[pos : pos + n]
        pos += n
        spk = voice.speaker_id
        counters[spk] = counters.get(spk, 0) + 1
        utt = f"{spk}-{prefix}{counters[spk]:05d}"
        pauses = [rng.uniform(e_lo, e_hi)] + [rng.uniform(p_lo, p_hi) for _ in range(n - 1)]
        pauses.append(rng.uniform(e_lo, e_hi))
        items.append(Item(
            id=utt, rel_path=ext.format(spk=spk, utt=utt), voice=voice, words=words,
            prosody=_prosody(cfg, voice, rng), pauses=pauses,
            peak_dbfs=float(rng.uniform(d_lo, d_hi)), seed=int(rng.integers(2**31)),
        ))
    # Training utterances spoken as connected speech (conf/synth.yaml ``connected``), by a draw
    # of each item's own seed: the plan's other draws, and so every other file, stay as they were.
    shares = {} if heldout else (cfg.get("connected") or {})
    for item in items:
        share = float(shares.get(item.voice.engine, 0.0))
        if share and np.random.default_rng([item.seed, 1]).random() < share:
            item.connected = True
    return items


def repeat_to(words: Sequence[str], n_tokens: int) -> list[str]:
    reps = -(-n_tokens // len(words))  # ceil: every type gets the same number of tokens
    return [w for w in words for _ in range(reps)]


# ----------------------------------------------------------------------------------------------
# Kaldi data directories


def _seconds(samples: int) -> str:
    return f"{samples / SAMPLE_RATE:.2f}"


def write_kaldi_dir(
    data_dir: Path, root: Path, rendered: Sequence[Rendered], items: dict[str, Item],
) -> None:
    """wav.scp, text, utt2spk, spk2utt and words.ctm for word-joined utterances."""
    recs = sorted(rendered, key=lambda r: r.id)
    spk = {r.id: items[r.id].voice.speaker_id for r in recs}
    write_lines_atomic(data_dir / "wav.scp", (f"{r.id} {root / r.rel_path}" for r in recs))
    write_lines_atomic(data_dir / "text", (f"{r.id} {' '.join(items[r.id].words)}" for r in recs))
    write_lines_atomic(data_dir / "utt2spk", (f"{r.id} {spk[r.id]}" for r in recs))
    spk2utt: dict[str, list[str]] = {}
    for r in recs:
        spk2utt.setdefault(spk[r.id], []).append(r.id)
    write_lines_atomic(data_dir / "spk2utt", (f"{s} {' '.join(u)}" for s, u in sorted(spk2utt.items())))
    for r in recs:
        for _, start, length in r.words:
            assert start % HOP == 0 and length % HOP == 0  # CTM times exact at 2 decimals
    write_lines_atomic(
        data_dir / "words.ctm",
        (f"{r.id} 1 {_seconds(s)} {_seconds(n)} {w}" for r in recs for w, s, n in r.words),
    )


def _word_stats(rendered: Sequence[Rendered], items: dict[str, Item], train: set[str] | None) -> dict:
    words = [w for r in rendered for w in items[r.id].words]
    stats = {
        "utterances": len(rendered),
        "speakers": len({items[r.id].voice.speaker_id for r in rendered}),
        "word_tokens": len(words),
        "word_types": len(set(words)),
        "hours": round(sum(r.num_samples for r in rendered) / SAMPLE_RATE / 3600, 4),
    }
    if train is not None:
        unseen = set(words) - train
        stats["unseen_word_types"] = len(unseen)
        stats["unseen_type_fraction"] = round(len(unseen) / max(1, len(set(words))), 4)
    return stats


# ----------------------------------------------------------------------------------------------
# the corpora


def build_king_asr_066(cfg, vocab: Vocabulary, root: Path, final_root: Path, nj: int) -> dict:
    c = cfg["king_asr_066"]
    rng = _rng(cfg, "king_asr_066")
    tokens = repeat_to(vocab.training, int(c["tokens"]))
    items = word_utterances(cfg, tokens, None, False, int(c["max_words"]), rng, "",
                             "wav/{spk}/{utt}.wav")
    rendered = render(items, root, audio_config(cfg), nj=nj, progress=_label("king_asr_066"))
    by_id = {i.id: i for i in items}
    write_kaldi_dir(root / "data", final_root, list(rendered.values()), by_id)
    return _word_stats(list(rendered.values()), by_id, None) | drop_report(items)


def build_wsj(cfg, vocab: Vocabulary, root: Path, final_root: Path, nj: int) -> dict:
    c = cfg["wsj"]
    rng = _rng(cfg, "wsj")
    n_types = int(c["types"])
    n_unseen = int(np.ceil(float(c["unseen_fraction"]) * n_types))
    if n_unseen > len(vocab.unseen) or n_types - n_unseen > len(vocab.train):
        raise ValueError(f"wsj needs {n_unseen} unseen and {n_types - n_unseen} seen word types; "
                         f"the vocabulary has {len(vocab.unseen)} and {len(vocab.train)}")
    types = list(rng.choice(vocab.unseen, n_unseen, replace=False))
    types += list(rng.choice(vocab.train, n_types - n_unseen, replace=False))
    tokens = repeat_to(sorted(types), int(c["segments"]))
    subset = c.get("subset", "si_et_synth")
    items = word_utterances(cfg, tokens, None, True, int(c["max_words"]), rng, "",
                             f"wsj0/{subset}/{{spk}}/{{utt}}.wv1")
    rendered = render(items, root, audio_config(cfg), nj=nj, progress=_label("wsj"))
    by_id = {i.id: i for i in items}
    recs = list(rendered.values())
    write_kaldi_dir(root / "data", final_root, recs, by_id)
    # LDC ships transcripts as .dot files, one line "TEXT (utt-id)" per utterance.
    dots: dict[str, list[str]] = {}
    for r in sorted(recs, key=lambda r: r.id):
        spk = by_id[r.id].voice.speaker_id
        dots.setdefault(spk, []).append(f"{' '.join(by_id[r.id].words).upper()} ({r.id})")
    for spk, lines in dots.items():
        write_lines_atomic(root / "wsj0" / subset / spk / f"{spk}.dot", lines)
    return _word_stats(recs, by_id, set(vocab.train)) | drop_report(items)


def _phrases(words: Sequence[str], n: int, count: int, rng: np.random.Generator) -> list[str]:
    if count > len(words) ** n:
        raise ValueError(f"libriphrase: {count} distinct {n}-word phrases asked for, but "
                         f"{len(words)} words make only {len(words) ** n}; lower "
                         f"anchors_per_class or pool")
    out: list[str] = []
    seen = set()
    while len(out) < count:
        p = " ".join(rng.choice(words, n))
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def plan_libriphrase(cfg, vocab: Vocabulary, lexicon: dict[str, list[str]], rng) -> list[dict]:
    """Rows of the four CSVs (without audio): anchor, positive, easy and hard negatives.

    Hard negatives are the nearest phrases by phoneme edit distance (stress removed, as
    LibriPhrase does) among a pool of random phrases plus the anchor with one word replaced by
    one of its nearest words; ties are broken at random. A negative never has the anchor's
    phonemes ("two" / "too"): LibriPhrase keeps edit distances above 0 only, and no score of
    audio against a pronunciation can tell such a pair apart.
    """
    import kaldialign

    c = cfg["libriphrase"]
    words = sorted(set(vocab.train) | set(vocab.unseen))
    phones = {w: [p.rstrip("012") for p in lexicon[w]] for w in words}

    def dist(a: str, b: str) -> int:
        pa = [p for w in a.split() for p in phones[w]]
        pb = [p for w in b.split() for p in phones[w]]
        return kaldialign.edit_distance(pa, pb)["total"]

    neighbours: dict[str, list[str]] = {}

    def nearest_words(w: str, k: int = 4) -> list[str]:
        if w not in neighbours:
            scored = sorted((dist(w, o), rng.random(), o) for o in words if o != w)
            neighbours[w] = [o for _, _, o in scored[:k]]
        return neighbours[w]

    rows = []
    n_anchor = int(c["anchors_per_class"])
    for n in range(1, int(c.get("max_words", 4)) + 1):
        pool = _phrases(words, n, max(4 * n_anchor, int(c.get("pool", 200))), rng)
        for anchor in pool[:n_anchor]:
            parts = anchor.split()
            candidates = set(pool)
            for i, w in enumerate(parts):
                for o in nearest_words(w):
                    candidates.add(" ".join(parts[:i] + [o] + parts[i + 1 :]))
            candidates.discard(anchor)
            # Sorted: a set's order follows the per-process string hash, and the random tie-break
            # must meet the candidates in the same order every run. Every candidate draws its
            # tie-break, homophones too, so that excluding them changes no other row's draw.
            keyed = [(dist(anchor, p), rng.random(), p) for p in sorted(candidates)]
            hard = min((k for k in keyed if k[0] > 0), default=(0, 0, None))[2]
            if hard is None:
                raise ValueError(f"libriphrase: no phrase of the pool differs from the anchor "
                                 f"{anchor!r} in its phonemes; the vocabulary is too small")
            easy = pool[int(rng.integers(1, len(pool)))]
            while easy == hard or dist(anchor, easy) == 0:
                easy = pool[int(rng.integers(len(pool)))]
            rows.append({"n": n, "anchor": anchor, "positive": anchor, "easy": easy, "hard": hard})
    return rows


def build_libriphrase(cfg, vocab: Vocabulary, root: Path, final_root: Path, nj: int) -> dict:
    from pyadml.text import G2P

    rng = _rng(cfg, "libriphrase")
    lexicon = G2P().lexicon(sorted(set(vocab.train) | set(vocab.unseen)))
    plan = plan_libriphrase(cfg, vocab, lexicon, rng)
    heldout = cfg["voices"]["heldout"]
    d_lo, d_hi = audio_config(cfg).peak_dbfs
    e_lo, e_hi = cfg.get("libriphrase", {}).get("edge_silence", (0.02, 0.1))
    items: list[Item] = []
    counters: dict[tuple[str, int], int] = {}

    def item(text: str, n: int, voice: Voice) -> Item:
        spk = voice.speaker_id
        k = counters[(spk, n)] = counters.get((spk, n), 0) + 1
        name = f"{spk}_{n}word_{k:05d}"
        it = Item(
            id=name, rel_path=f"train-other-500/{spk}/{n}word/{name}.wav", voice=voice,
            words=text.split(), prosody=_prosody(cfg, voice, rng),
            pauses=[rng.uniform(e_lo, e_hi), rng.uniform(e_lo, e_hi)],
            peak_dbfs=float(rng.uniform(d_lo, d_hi)), seed=int(rng.integers(2**31)), joined=True,
        )
        items.append(it)
        return it

    weights = _voice_weights(cfg, "heldout")

    def pick(pool: list[Voice]) -> Voice:
        if weights is None:  # uniform, as before the neural engines came
            return pool[int(rng.integers(len(pool)))]
        p = np.array([weights[v] for v in pool])
        return pool[int(rng.choice(len(pool), p=p / p.sum()))]

    table = []
    for row in plan:
        a_voice = pick(heldout)
        others = [v for v in heldout if v != a_voice]
        anchor = item(row["anchor"], row["n"], a_voice)
        for typ, key, target in zip(LIBRIPHRASE_TYPES, ("positive", "easy", "hard"), (1, 0, 0)):
            comp = item(row[key], row["n"], pick(others))
            table.append((row["n"], anchor, comp, typ, target))
    rendered = render(items, root, audio_config(cfg), nj=nj, progress=_label("libriphrase"))
    # A phrase a voice could not speak takes its trials with it.
    table = [t for t in table if t[1].id in rendered and t[2].id in rendered]

    counts = {}
    for n in sorted({t[0] for t in table}):
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(LIBRIPHRASE_COLUMNS)
        rows_n = [t for t in table if t[0] == n]
        for _, a, c, typ, target in rows_n:
            w.writerow([
                a.rel_path, a.voice.speaker_id, " ".join(a.words), f"{rendered[a.id].duration:.4f}",
                c.rel_path, c.voice.speaker_id, " ".join(c.words), f"{rendered[c.id].duration:.4f}",
                typ, target, n,
            ])
        write_text_atomic(root / "data" / f"libriphrase_diffspk_all_{n}word.csv", buf.getvalue())
        counts[f"{n}word"] = len(rows_n)
    texts = {" ".join(i.words) for i in items if i.id in rendered}
    return {
        "csv_rows": len(table), "rows_per_file": counts, "wav_files": len(rendered),
        "phrase_types": len(texts),
        "word_types": len({w for i in items if i.id in rendered for w in i.words}),
        "unseen_word_types": len({w for i in items if i.id in rendered for w in i.words}
                                 - set(vocab.train)),
        "hours": round(sum(r.num_samples for r in rendered.values()) / SAMPLE_RATE / 3600, 4),
        "type_counts": {t: sum(1 for x in table if x[3] == t) for t in LIBRIPHRASE_TYPES},
    } | drop_report(items)


def build_musan(cfg, vocab: Vocabulary, root: Path, final_root: Path, nj: int) -> dict:
    from pyadml.synth.noise import make_musan_like

    c = cfg["musan"]
    rng = _rng(cfg, "musan")
    # Babble comes from training voices reading random word strings.
    n_clips = int(c.get("speech_clips", 60))
    texts = [" ".join(rng.choice(vocab.train, int(rng.integers(4, 9)))) for _ in range(n_clips)]
    voices = _pick_voices(cfg, n_clips, rng)
    items = [
        Item(id=f"clip{k:04d}", rel_path=f"clips/clip{k:04d}.wav", voice=v, words=t.split(),
             prosody=_prosody(cfg, v, rng), pauses=[0.0, 0.0], peak_dbfs=-3.0,
             seed=int(rng.integers(2**31)), joined=True)
        for k, (t, v) in enumerate(zip(texts, voices))
    ]
    scratch = root / ".clips"
    rendered = render(items, scratch, audio_config(cfg), nj=nj,
                      progress=_label("musan") + " (babble)")
    import soundfile as sf

    clips = [sf.read(str(scratch / rendered[i.id].rel_path), dtype="float32")[0]
             for i in items if i.id in rendered]
    shutil.rmtree(scratch)
    stats = make_musan_like(
        root, n_music=int(c["n_music"]), n_noise=int(c["n_noise"]), speech_clips=clips,
        n_speech=int(c["n_speech"]), duration=float(c["duration"]), seed=int(rng.integers(2**31)),
    )
    return dict(stats) | drop_report(items)


def build_rirs_noises(cfg, vocab: Vocabulary, root: Path, final_root: Path, nj: int) -> dict:
    from pyadml.synth.rooms import make_rirs_like

    c = cfg["rirs_noises"]
    rng = _rng(cfg, "rirs_noises")
    stats = make_rirs_like(
        root, rooms_per_type=int(c["rooms_per_type"]), rirs_per_room=int(c["rirs_per_room"]),
        seed=int(rng.integers(2**31)),
    )
    return dict(stats)


BUILDERS = {
    "king_asr_066": build_king_asr_066,
    "wsj": build_wsj,
    "libriphrase": build_libriphrase,
    "musan": build_musan,
    "rirs_noises": build_rirs_noises,
}
_DESCRIPTIONS = {
    "king_asr_066": "Training corpus in King-ASR-066's place: Kaldi data directory (data/) with a "
    "word CTM (data/words.ctm); wavs under wav/<speaker>/. Training TTS voices.",
    "wsj": "WSJ-like evaluation corpus: NIST SPHERE .wv1 files and .dot transcripts under "
    "wsj0/<subset>/<speaker>/, plus a Kaldi data directory with a word CTM (data/). Held-out voices.",
    "libriphrase": "LibriPhrase-like evaluation set: data/libriphrase_diffspk_all_{1,2,3,4}word.csv "
    "with paths relative to this directory. Held-out voices.",
    "musan": "MUSAN-like noise, music and babble (music/ noise/ speech/).",
    "rirs_noises": "RIRS_NOISES-like simulated room impulse responses (simulated_rirs/).",
}


# What the corpus being built is called on the console: "synth 2/5 wsj" (set by build_corpora).
_LABELS: dict[str, str] = {}


def _label(name: str) -> str:
    return _LABELS.get(name, f"synth {name}")


def _note(text: str) -> None:
    """One event line on the stage's console (pyadml.train.progress)."""
    from pyadml.train.progress import note

    note(text)


def is_complete(out_dir: Path, name: str, cfg: dict[str, Any]) -> bool:
    return marker_is_current(Path(out_dir) / name / ".complete", _digest(cfg, name), cfg)


def marker_is_current(marker: Path, digest: str, cfg: dict[str, Any]) -> bool:
    """A corpus's ``.complete`` marker written with these settings (``digest``) and the names
    that this machine's espeak-ng is given for its voices. A corpus built while espeak-ng
    dropped a voice's variant (before espeak_voice_name) has no espeak_names: its audio is not
    what the names now give."""
    if not marker.is_file():
        return False
    done = json.loads(marker.read_text())
    renamed = espeak_renamed(cfg)
    return done.get("digest") == digest and (
        renamed is None or done.get("espeak_names", {}) == renamed)


def marker_text(digest: str, cfg: dict[str, Any], stats: dict) -> str:
    """The ``.complete`` marker that marker_is_current accepts."""
    return json.dumps({"digest": digest, "espeak_names": espeak_renamed(cfg) or {},
                       "stats": stats}, indent=1, sort_keys=True) + "\n"


def build_corpora(
    cfg: dict[str, Any], out_dir: str | Path, corpora: Sequence[str] = CORPORA, nj: int = 1,
) -> dict[str, dict]:
    """Build each requested corpus under ``out_dir/<name>``; complete ones are skipped."""
    out_dir = Path(out_dir).resolve()
    unknown = set(corpora) - set(CORPORA)
    if unknown:
        raise ValueError(f"unknown corpora {sorted(unknown)}; expected some of {CORPORA}")
    todo = [c for c in CORPORA if c in corpora and not is_complete(out_dir, c, cfg)]
    summary: dict[str, dict] = {}
    wanted = [c for c in CORPORA if c in corpora]
    _LABELS.clear()
    _LABELS.update({c: f"synth {i}/{len(wanted)} {c}" for i, c in enumerate(wanted, 1)})
    for name in CORPORA:
        if name in corpora and name not in todo:
            marker = json.loads((out_dir / name / ".complete").read_text())
            summary[name] = marker["stats"] | {"skipped": True}
            log.info("%s: complete (%s); skipping", name, out_dir / name / ".complete")
            _note(f"{_label(name)}: complete, skipping")
    if not todo:
        return summary
    voices = cfg["voices"]["train"] + cfg["voices"]["heldout"]
    check_engines(voices)
    vocab = make_vocabulary(cfg)
    for name in todo:
        t0 = time.time()
        final = out_dir / name
        tmp = out_dir / f".{name}.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        stats = BUILDERS[name](cfg, vocab, tmp, final, nj)
        stats["build_seconds"] = round(time.time() - t0, 1)
        write_text_atomic(tmp / "README", (
            f"{_DESCRIPTIONS[name]}\nSynthesised by pyadml stage 0 (python -m "
            f"pyadml.bin.make_synth_corpora), size '{cfg['size']}', seed {cfg['seed']}.\n"
        ))
        write_text_atomic(tmp / ".complete", marker_text(_digest(cfg, name), cfg, stats))
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        summary[name] = stats
        log.info("%s: %s", name, stats)
        if name in ("musan", "rirs_noises"):  # the others reported their words as they went
            _note(f"{_label(name)}: done in {stats['build_seconds']:.1f} s")
    return summary


def disk_usage(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
