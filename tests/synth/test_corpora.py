"""The tiny embedded corpora: layouts that lhotse accepts, exact CTMs, held-out voices,
LibriPhrase-style trials, determinism and idempotence."""

import csv
import json
import os
from collections import Counter
from pathlib import Path

import kaldialign
import numpy as np
import pytest
import soundfile as sf

from pyadml.synth.corpora import (
    LIBRIPHRASE_COLUMNS, LIBRIPHRASE_TYPES, build_corpora, load_config, make_vocabulary,
)
from pyadml.synth.voices import SynthesisError, Voice, check_engines, engine_available
from pyadml.synth.vocabulary import frequent_words

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "egs" / "wsj_librikws" / "conf" / "synth.yaml"
TEXT_FILES = ["data/wav.scp", "data/text", "data/utt2spk", "data/spk2utt", "data/words.ctm"]

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not engine_available(), reason="espeak-ng/flite/festival missing")]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "synth"
    cfg = load_config(CONFIG, "tiny")
    summary = build_corpora(cfg, out, nj=2)
    return out, cfg, summary


def read_kaldi(path):
    return dict(line.split(maxsplit=1) for line in Path(path).read_text().splitlines())


def read_ctm(path):
    rows = []
    for line in Path(path).read_text().splitlines():
        utt, ch, start, dur, word = line.split()
        rows.append((utt, ch, float(start), float(dur), word))
    return rows


def longest_zero_run(audio):
    z = np.concatenate([[0], (audio == 0).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(z))
    return int((edges[1::2] - edges[::2]).max()) if len(edges) else 0


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_kaldi_dirs_load_in_lhotse(tiny):
    from lhotse.kaldi import load_kaldi_data_dir

    out, _, summary = tiny
    for name in ("king_asr_066", "wsj"):
        recs, sups, _ = load_kaldi_data_dir(out / name / "data", sampling_rate=16000)
        text = read_kaldi(out / name / "data" / "text")
        assert len(recs) == len(sups) == len(text) == summary[name]["utterances"]
        for sup in sups:
            assert sup.text == text[sup.recording_id]
        audio = recs[0].load_audio()
        assert audio.shape[0] == 1 and recs[0].sampling_rate == 16000


def test_spk2utt_is_the_inverse_of_utt2spk(tiny):
    out, _, _ = tiny
    for name in ("king_asr_066", "wsj"):
        utt2spk = read_kaldi(out / name / "data" / "utt2spk")
        spk2utt = read_kaldi(out / name / "data" / "spk2utt")
        inverse = {u: s for s, us in spk2utt.items() for u in us.split()}
        assert inverse == utt2spk
        assert all(u.startswith(s + "-") for u, s in utt2spk.items())  # Kaldi sort order


def test_wsj_is_sphere_with_dot_transcripts(tiny):
    out, _, _ = tiny
    wavs = read_kaldi(out / "wsj" / "data" / "wav.scp")
    text = read_kaldi(out / "wsj" / "data" / "text")
    for utt, path in wavs.items():
        assert path.endswith(".wv1") and Path(path).read_bytes()[:7] == b"NIST_1A"
        assert sf.info(path).samplerate == 16000
    dots = {}
    for dot in (out / "wsj" / "wsj0").rglob("*.dot"):
        for line in dot.read_text().splitlines():
            words, utt = line.rsplit(" (", 1)
            dots[utt.rstrip(")")] = words.lower()
    assert dots == text


def test_ctm_words_lie_inside_their_audio_and_are_not_silent(tiny):
    out, cfg, _ = tiny
    dither = cfg["audio"]["dither"]
    for name in ("king_asr_066", "wsj"):
        wavs = read_kaldi(out / name / "data" / "wav.scp")
        text = read_kaldi(out / name / "data" / "text")
        ctm = read_ctm(out / name / "data" / "words.ctm")
        words_by_utt = {}
        for utt, ch, start, dur, word in ctm:
            words_by_utt.setdefault(utt, []).append(word)
            audio, sr = sf.read(wavs[utt])
            a, b = round(start * sr), round((start + dur) * sr)
            assert ch == "1" and 0 <= a < b <= len(audio), (utt, start, dur, len(audio))
            rms = np.sqrt(np.mean(audio[a:b] ** 2))
            assert rms > 30 * dither, f"{utt} {word} is silent (rms {rms:.2e})"
        assert {u: " ".join(w) for u, w in words_by_utt.items()} == text


def test_one_edge_rule_for_every_engine(tiny):
    # Each CTM word starts with the same padded silence (dither only), whatever the engine (an
    # engine that speaks whole utterances: each utterance's first word), and no engine leaves
    # exact digital silence anywhere.
    from pyadml.synth.voices import UTTERANCE_ENGINES

    out, cfg, _ = tiny
    dither, margin = cfg["audio"]["dither"], cfg["audio"]["trim_margin"]
    wavs = read_kaldi(out / "king_asr_066" / "data" / "wav.scp")
    edge, seen = {}, set()
    for utt, _, start, dur, _ in read_ctm(out / "king_asr_066" / "data" / "words.ctm"):
        engine = utt.split("-")[0]
        if engine in UTTERANCE_ENGINES and utt in seen:
            continue
        seen.add(utt)
        audio, sr = sf.read(wavs[utt])
        a = round(start * sr)
        head = audio[a : a + int(0.8 * margin * sr)]
        edge.setdefault(engine, []).append(np.sqrt(np.mean(head**2)))
        assert longest_zero_run(audio) < 16
    # the Debian engines always; the neural ones where the tiny plan gives them a word (their
    # edges are checked word by word in test_neural_voices.py)
    assert {"espeak", "flite", "festival"} <= set(edge) <= {v.engine for v in cfg["voices"]["train"]}
    for engine, levels in edge.items():
        assert np.median(levels) < 2 * dither, (engine, np.median(levels))


def test_held_out_voices_speak_every_evaluation_set_and_never_train(tiny):
    out, cfg, _ = tiny
    train = {v.speaker_id for v in cfg["voices"]["train"]}
    heldout = {v.speaker_id for v in cfg["voices"]["heldout"]}
    king = set(read_kaldi(out / "king_asr_066" / "data" / "utt2spk").values())
    wsj = set(read_kaldi(out / "wsj" / "data" / "utt2spk").values())
    lp = {r[k] for f in (out / "libriphrase" / "data").glob("*.csv") for r in read_csv(f)
          for k in ("anchor_spk", "comparison_spk")}
    assert king <= train and not king & heldout
    assert ({"espeak", "flite", "festival"} <= {s.split("-")[0] for s in king}
            <= {v.engine for v in cfg["voices"]["train"]})
    assert wsj <= heldout and lp <= heldout


def test_wsj_has_unseen_words(tiny):
    out, _, _ = tiny
    train_words = {w for t in read_kaldi(out / "king_asr_066" / "data" / "text").values() for w in t.split()}
    wsj_words = {w for t in read_kaldi(out / "wsj" / "data" / "text").values() for w in t.split()}
    assert len(wsj_words - train_words) / len(wsj_words) >= 0.3


def test_libriphrase_csvs(tiny):
    from pyadml.text import G2P

    out, _, summary = tiny
    g2p = G2P(strip_stress=True)
    lp = out / "libriphrase"
    dist = {t: [] for t in LIBRIPHRASE_TYPES}
    for n in (1, 2, 3, 4):
        path = lp / "data" / f"libriphrase_diffspk_all_{n}word.csv"
        with open(path, newline="") as f:
            assert next(csv.reader(f)) == list(LIBRIPHRASE_COLUMNS)
        rows = read_csv(path)
        assert Counter(r["type"] for r in rows) == {t: len(rows) // 3 for t in LIBRIPHRASE_TYPES}
        for r in rows:
            assert r["class"] == str(n)
            assert len(r["anchor_text"].split()) == len(r["comparison_text"].split()) == n
            assert r["anchor_spk"] != r["comparison_spk"]
            positive = r["type"] == "diffspk_positive"
            assert r["target"] == ("1" if positive else "0")
            assert (r["anchor_text"] == r["comparison_text"]) == positive
            for side in ("anchor", "comparison"):
                info = sf.info(str(lp / r[side]))
                assert info.samplerate == 16000 and info.channels == 1
                assert abs(info.frames / 16000 - float(r[f"{side}_dur"])) < 1e-3
            d = kaldialign.edit_distance(g2p(r["anchor_text"]), g2p(r["comparison_text"]))["total"]
            dist[r["type"]].append(d)
    assert summary["libriphrase"]["csv_rows"] == sum(len(v) for v in dist.values())
    assert max(dist["diffspk_positive"]) == 0
    assert np.mean(dist["diffspk_hardneg"]) < np.mean(dist["diffspk_easyneg"])


def test_musan_and_rirs_load_with_lhotse_recipes(tiny):
    from lhotse.recipes import prepare_musan, prepare_rir_noise

    out, cfg, _ = tiny
    musan = prepare_musan(out / "musan")
    for part in ("music", "noise", "speech"):
        assert len(musan[part]["recordings"]) == cfg["musan"][f"n_{part}"]
    rirs = prepare_rir_noise(out / "rirs_noises", parts=("sim_rir",))
    assert len(rirs["sim_rir"]["recordings"]) == 3 * cfg["rirs_noises"]["rooms_per_type"]


def test_rerun_is_a_no_op(tiny):
    out, cfg, _ = tiny
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    summary = build_corpora(cfg, out, nj=2)
    assert all(s.get("skipped") for s in summary.values())
    after = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert after == before


def test_same_seed_writes_identical_text_files(tiny, tmp_path):
    out, cfg, _ = tiny
    other = tmp_path / "again"
    build_corpora(cfg, other, corpora=("king_asr_066", "wsj", "libriphrase"), nj=1)
    for name in ("king_asr_066", "wsj"):
        for f in TEXT_FILES:
            mine = (out / name / f).read_text().replace(str(out.resolve()), "ROOT")
            theirs = (other / name / f).read_text().replace(str(other.resolve()), "ROOT")
            assert mine == theirs, f"{name}/{f} differs"
    for f in (out / "libriphrase" / "data").glob("*.csv"):
        assert f.read_bytes() == (other / "libriphrase" / "data" / f.name).read_bytes()
    # audio too, although only the text files are promised
    some = sorted((out / "wsj").rglob("*.wv1"))[:3]
    for p in some:
        assert p.read_bytes() == (other / p.relative_to(out)).read_bytes()


def test_another_seed_writes_another_corpus(tiny, tmp_path):
    out, _, _ = tiny
    cfg = load_config(CONFIG, "tiny", seed=7)
    build_corpora(cfg, tmp_path, corpora=("king_asr_066",), nj=2)
    assert (tmp_path / "king_asr_066/data/words.ctm").read_text() != (
        out / "king_asr_066/data/words.ctm").read_text()


def test_changed_settings_rebuild_the_corpus(tiny, tmp_path):
    cfg = load_config(CONFIG, "tiny")
    build_corpora(cfg, tmp_path, corpora=("rirs_noises",))
    cfg["rirs_noises"] = {"rooms_per_type": 2, "rirs_per_room": 1}
    summary = build_corpora(cfg, tmp_path, corpora=("rirs_noises",))
    assert not summary["rirs_noises"].get("skipped")
    assert len(list((tmp_path / "rirs_noises").rglob("*.wav"))) == 6
    marker = json.loads((tmp_path / "rirs_noises" / ".complete").read_text())
    assert marker["stats"]["rirs"] == 6


def test_a_corpus_built_while_espeak_dropped_the_variant_is_rebuilt(tiny, tmp_path):
    """A marker without the espeak-ng names (written before en-gb+f1 kept its variant) is not
    complete for a config with such a voice; with the names it is."""
    cfg = load_config(CONFIG, "tiny")
    assert Voice("espeak", "en-gb+f1") in cfg["voices"]["train"]
    build_corpora(cfg, tmp_path, corpora=("rirs_noises",))
    path = tmp_path / "rirs_noises" / ".complete"
    marker = json.loads(path.read_text())
    assert marker["espeak_names"]["en-gb+f1"] == "gmw/en+f1"
    assert build_corpora(cfg, tmp_path, corpora=("rirs_noises",))["rirs_noises"]["skipped"]
    del marker["espeak_names"]
    path.write_text(json.dumps(marker))
    assert not build_corpora(cfg, tmp_path, corpora=("rirs_noises",))["rirs_noises"].get("skipped")


def test_an_espeak_variant_it_does_not_have_stops_before_any_audio(tmp_path):
    cfg = load_config(CONFIG, "tiny")
    cfg["voices"]["heldout"] = cfg["voices"]["heldout"] + [Voice("espeak", "en-gb+f9")]
    with pytest.raises(SynthesisError, match=r"no variant 'f9' \(in 'en-gb\+f9'\)"):
        build_corpora(cfg, tmp_path, corpora=("king_asr_066",))
    assert not (tmp_path / "king_asr_066").exists()


def test_config_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml", "tiny")
    with pytest.raises(ValueError, match="no size 'huge'"):
        load_config(CONFIG, "huge")
    bad = tmp_path / "bad.yaml"
    bad.write_text(CONFIG.read_text() + "\nspeling: 1\n")
    with pytest.raises(ValueError, match="unknown keys.*speling"):
        load_config(bad, "tiny")
    bad.write_text(CONFIG.read_text().replace("    - flite:awb", "    - flite:rms"))
    with pytest.raises(ValueError, match="both in training and held out.*flite-rms"):
        load_config(bad, "tiny")
    with pytest.raises(ValueError, match="unknown TTS engine 'say'"):
        Voice.parse("say:alex")


def test_missing_engine_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SynthesisError, match="espeak-ng not found.*apt-get install"):
        check_engines([Voice("espeak", "en-us")])
    monkeypatch.setenv("PATH", os.defpath)
    with pytest.raises(SynthesisError, match="festival voice 'no_such_voice' is missing"):
        check_engines([Voice("festival", "no_such_voice")])
    with pytest.raises(SynthesisError, match="flite has no voice"):
        check_engines([Voice("flite", "no_such_voice")])


def test_extra_training_words_reach_training_only(tiny, tmp_path):
    out, _, _ = tiny
    cfg = load_config(CONFIG, "tiny")
    base = make_vocabulary(cfg)
    cfg["vocabulary"] = dict(cfg["vocabulary"], extra_train_types=12)
    vocab = make_vocabulary(cfg)
    assert (vocab.train, vocab.unseen) == (base.train, base.unseen)
    # The next 12 words of the frequency list, after every training and unseen word.
    ranked = frequent_words(len(base.train) + len(base.unseen) + 12)
    assert set(vocab.extra) == set(ranked[-12:])
    assert not set(vocab.extra) & (set(base.train) | set(base.unseen))
    build_corpora(cfg, tmp_path, nj=2, corpora=("king_asr_066", "wsj"))
    said = {w for line in (tmp_path / "king_asr_066/data/text").read_text().splitlines()
            for w in line.split()[1:]}
    assert said == set(base.train) | set(vocab.extra)
    for name in ("data/text", "data/words.ctm"):  # the test set does not move
        assert (tmp_path / "wsj" / name).read_text() == (out / "wsj" / name).read_text()
    base_cfg = load_config(CONFIG, "tiny")  # so its marker stands, without the option too
    assert build_corpora(base_cfg, tmp_path, nj=2, corpora=("wsj",))["wsj"].get("skipped")
    cfg["vocabulary"]["extra_types"] = 3
    with pytest.raises(ValueError, match="unknown keys.*extra_types"):
        make_vocabulary(cfg)
