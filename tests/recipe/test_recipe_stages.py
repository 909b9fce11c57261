"""The full recipe test: egs/wsj_librikws/run.sh stages 0-9 on the tiny embedded corpora and the
tiny training config, on a copy of the recipe."""

import csv
import gzip
import json

import pytest
from lhotse import CutSet

from pyadml.data.dataset import read_keyword_ids
from pyadml.data.trials import read_trials
from pyadml.synth.voices import engine_available
from pyadml.text import PhoneTable, read_lexicon

from test_recipe_stage0 import copy_recipe, run

pytestmark = [pytest.mark.slow, pytest.mark.recipe_run,
              pytest.mark.skipif(not engine_available(), reason="espeak-ng/flite/festival missing")]


KEYWORDS = ["alexa", "computer", "jarvis", "smart mirror", "snowboy", "view glass"]


def wakeword_set(root):
    """A stand-in for db.sh's WAKEWORD_DEV: each keyword spoken once by a training voice, with
    a second of silence around it as in real recordings (clips.tsv + audio/), the speaker in a
    third column (stage 8 then scores it with the speaker mean too)."""
    import numpy as np
    import soundfile as sf

    from pyadml.synth.voices import Voice, synthesize

    (root / "audio").mkdir(parents=True)
    audio = synthesize(Voice.parse("espeak:en-us"), KEYWORDS)
    lines = []
    for kw, x in zip(KEYWORDS, audio):
        name = f"audio/{kw.replace(' ', '_')}.flac"
        pad = np.zeros(16000, np.float32)
        sf.write(root / name, np.concatenate([pad, x, pad]), 16000)
        lines.append(f"{name}\t{kw}\tespeak-en-us\n")
    (root / "clips.tsv").write_text("".join(lines))
    return root


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    recipe = copy_recipe(tmp_path_factory.mktemp("egs") / "wsj_librikws")
    ww = wakeword_set(tmp_path_factory.mktemp("wakeword"))
    with open(recipe / "db.sh", "a") as f:
        f.write(f"WAKEWORD_DEV={ww}\n")
    # Issue 16's spans and noise context on (the default has context on, spans off), so that
    # their path through the stages is tested.
    for name, key, on in (("data.yaml", "spans: {share: ", "0.3"), ("augment.yaml", "context: {prob: ", "0.5")):
        conf = recipe / "conf" / name
        text = conf.read_text()
        assert key in text, name
        start = text.index(key) + len(key)
        conf.write_text(text[:start] + on + text[text.index(",", start):])
    res = run(recipe, "--synth-size", "tiny", "--nj", "2", "--train-config", "conf/train_tiny.yaml")
    assert res.returncode == 0, res.stdout + res.stderr
    (recipe / "run.out").write_text(res.stdout)
    return recipe


def test_stage1_manifests(recipe):
    m = recipe / "data" / "manifests"
    for name in ("king_asr_066_recordings_train", "king_asr_066_supervisions_train",
                 "wsj_recordings_test", "wsj_supervisions_test", "libriphrase_recordings_test",
                 "libriphrase_pairs_test", "musan_recordings_noise", "rir_recordings_sim_rir"):
        assert (m / f"{name}.jsonl.gz").is_file(), name


def test_stage2_word_cuts_match_the_ctm_and_the_lexicon_covers_them(recipe):
    synth = recipe / "data/local/synth"
    ctm_words = len((synth / "king_asr_066/data/words.ctm").read_text().splitlines())
    cuts = recipe / "data/cuts"
    from pyadml.data.cuts import is_span

    every = CutSet.from_file(cuts / "king_asr_066_train.jsonl.gz")
    train = [c for c in every if not is_span(c)]
    spans = [c for c in every if is_span(c)]
    dev = CutSet.from_file(cuts / "king_asr_066_dev.jsonl.gz")
    assert len(train) + len(dev) == ctm_words  # tiny words all lie within the limits
    assert not any(is_span(c) for c in dev)
    # Multi-word spans (conf/data.yaml word_cuts.spans) beside the words, counted in report.json.
    assert spans and all(2 <= len(c.supervisions[0].text.split()) <= 4 for c in spans)
    lang = recipe / "data/lang"
    assert set(read_keyword_ids(lang / "keywords.txt")) == {c.supervisions[0].text for c in train}
    lex = read_lexicon(lang / "lexicon.txt")
    lp_rows = [r for f in (synth / "libriphrase/data").glob("*.csv") for r in csv.DictReader(open(f))]
    words = {w for r in lp_rows for w in r["anchor_text"].split() + r["comparison_text"].split()}
    assert words <= set(lex)
    assert len(PhoneTable.read(lang / "phones.txt")) == 70
    assert (lang / "g2p.yaml").is_file()
    report = json.loads((cuts / "report.json").read_text())
    assert report["dropped"]["king_asr_066_train"]["kept"] == ctm_words
    assert report["sets"]["king_asr_066_train"]["spans"] == len(spans)


def test_stage3_and_4_augmented_features(recipe):
    fb = recipe / "data/fbank"
    clean = CutSet.from_file(recipe / "data/cuts/king_asr_066_train.jsonl.gz")
    aug = CutSet.from_file(fb / "king_asr_066_train_aug.jsonl.gz")
    assert len(aug) == 3 * len(clean)  # clean + 2 copies (conf/augment.yaml)
    for cut in list(aug)[:: max(1, len(aug) // 20)]:
        feats = cut.load_features()
        assert feats.shape[1] == 40 and abs(feats.shape[0] - cut.duration * 100) <= 1
    wsj_aug = CutSet.from_file(fb / "wsj_test_aug.jsonl.gz")
    assert {c.id for c in wsj_aug} == {c.id + "_aug1" for c in CutSet.from_file(fb / "wsj_test.jsonl.gz")}


def test_stage5_trials(recipe):
    t = recipe / "data/trials"
    wsj = read_trials(t / "wsj_test.tsv")
    words = {c.supervisions[0].text for c in CutSet.from_file(recipe / "data/cuts/wsj_test.jsonl.gz")}
    positives = [x for x in wsj if x.label == 1]
    assert len(wsj) == len(positives) * min(51, len(words))
    assert {x.cut_id + "_aug1" for x in wsj} == {x.cut_id for x in read_trials(t / "wsj_test_aug.tsv")}
    assert (t / "king_asr_066_dev.tsv").is_file()
    lp_rows = [json.loads(l) for l in gzip.open(recipe / "data/manifests/libriphrase_pairs_test.jsonl.gz", "rt")]
    for name, neg_type in (("lp_e", "diffspk_easyneg"), ("lp_h", "diffspk_hardneg")):
        trials = read_trials(t / f"libriphrase_test_{name}.tsv")
        assert {x.tag for x in trials} == {"diffspk_positive", neg_type}
        assert sum(1 for x in trials if x.label == 0) == 2 * sum(r["type"] == neg_type for r in lp_rows)


def test_stages_6_to_8_train_export_and_score(recipe):
    import torch

    from pyadml.models.export import load_model

    exp = recipe / "exp" / "tiny"
    assert sorted(p.name for p in (exp / "checkpoints").glob("epoch-*.pt")) == ["epoch-1.pt", "epoch-2.pt"]
    loaded = load_model(exp / "final.pt")
    keys = torch.load(exp / "final.pt", weights_only=True)["model"].keys()
    assert all(k.startswith(("audio.", "text.")) for k in keys)
    assert len(loaded.phone_table) == 70
    metrics = json.loads((exp / "results" / "metrics.json").read_text())["sets"]
    lp = ("libriphrase_test_lp_e", "libriphrase_test_lp_h")
    assert set(metrics) == {"wsj_test", "wsj_test_aug", *lp}
    # Stages 7-8 read the experiment's own copies of the lang directory and fbank options.
    assert (exp / "lang" / "lexicon.txt").read_bytes() == (recipe / "data/lang/lexicon.txt").read_bytes()
    assert loaded.features["mean_norm"] is True and loaded.tokenizer.lexicon
    for name in ("wsj_test", "wsj_test_aug"):
        assert 0.0 < metrics[name]["AP"] <= 1.0
        rows = (exp / "results" / name / "scores.tsv").read_text().splitlines()
        assert len(rows) == len((recipe / "data" / "trials" / f"{name}.tsv").read_text().splitlines())
    for name in lp:
        assert 0.0 <= metrics[name]["EER"] <= 1.0 and 0.0 <= metrics[name]["AUC"] <= 1.0
    for png in ("roc.png", "det.png", "pr.png"):
        assert (exp / "results" / png).stat().st_size > 0
    assert "tiny" in (recipe / "RESULTS.md").read_text()
    assert "AP" in (recipe / "run.out").read_text()  # the results table is printed at the end
    # The same trials T-normed after each clip loses its speaker's mean: the WSJ-like speakers
    # hold several clips each, so their scores move from T-norm's.
    spk = json.loads((exp / "results_tnorm_spkmean" / "metrics.json").read_text())["sets"]
    assert set(spk) == set(metrics)
    for name in ("wsj_test", "wsj_test_aug"):
        assert ((exp / "results_tnorm_spkmean" / name / "scores.tsv").read_text()
                != (exp / "results_tnorm" / name / "scores.tsv").read_text())
    assert "tiny, T-norm, speaker mean" in (recipe / "RESULTS.md").read_text()
    assert "loses its speaker's mean (--score-norm tnorm --speaker-mean" in (recipe / "run.out").read_text()


def test_stage8_scores_the_real_recordings_and_stage9_spots_in_continuous_speech(recipe):
    exp = recipe / "exp" / "tiny"
    ww = json.loads((exp / "results" / "wakeword_dev" / "metrics.json").read_text())
    assert ww["clips"] == 6 and sorted(ww["keywords"]) == KEYWORDS
    out = (recipe / "run.out").read_text()
    assert "Real recordings" in out and "6 clips x 6 keywords" in out
    vad = json.loads((exp / "results" / "wakeword_dev_vad" / "metrics.json").read_text())
    assert vad["clips"] == 6 and "VAD front end" in out
    # the back-ends beside the cosine: T-norm, and the phrase sets scored word by word
    tnorm = json.loads((exp / "results_tnorm" / "metrics.json").read_text())
    assert "wsj_test" in tnorm["sets"] and "libriphrase_test_lp_h" in tnorm["sets"]
    words = json.loads((exp / "results_words" / "metrics.json").read_text())
    assert set(words["sets"]) == {"libriphrase_test_lp_e", "libriphrase_test_lp_h"}
    assert "word by word" in out and "tiny, phrase words" in (recipe / "RESULTS.md").read_text()
    ww_words = json.loads((exp / "results" / "wakeword_dev_words" / "metrics.json").read_text())
    assert ww_words["clips"] == 6
    # the level-relative floor (pyadml.score.floor), alone, with T-norm, and with T-norm and the
    # words (score_clips' default)
    for name, norm, phrase, enrol in (("wakeword_dev_floor50", "none", "clip", "none"),
                                      ("wakeword_dev_floor50_tnorm", "tnorm", "clip", "none"),
                                      ("wakeword_dev_floor50_tnorm_words", "tnorm", "words", "none"),
                                      ("wakeword_dev_floor50_tnorm_words_enrol", "tnorm", "words",
                                       "tts")):
        floored = json.loads((exp / "results" / name / "metrics.json").read_text())
        assert floored["clips"] == 6 and floored["floor_db"] == 50.0
        assert floored["score_norm"] == norm and floored["phrase_score"] == phrase
        assert floored["enrol"] == enrol
    # the rows without --floor-db, --score-norm or --phrase-score have none of them, though
    # score_clips alone floors, scores the words of and T-norms a user's clips
    for m in (ww, vad):
        assert m["floor_db"] is None and m["score_norm"] == "none" and m["phrase_score"] == "clip"
        assert m["enrol"] == "none"
    assert ww_words["phrase_score"] == "words"
    assert "(--floor-db 50 --score-norm tnorm)" in out
    assert "TTS enrolment (score_pairs' and score_clips' default)" in out
    # the test sets with TTS enrolment beside the cosine (steps/score_sets.sh --enrol true)
    enrolled = json.loads((exp / "results_enrol" / "metrics.json").read_text())["sets"]
    assert set(enrolled) == set(json.loads((exp / "results" / "metrics.json").read_text())["sets"])
    assert "tiny, TTS enrolment" in (recipe / "RESULTS.md").read_text()
    # the words' windows went through the ONNX export of this final.pt (its parity printed)
    assert "onnxruntime vs torch max abs diff" in (exp / "log" / "export_onnx.log").read_text()
    assert "--words-onnx" in (recipe / "RESULTS.md").read_text()
    cont = json.loads((exp / "continuous" / "metrics.json").read_text())
    assert set(cont["sets"]) == {"synth", "real"}
    assert cont["enrol"] == "tts"  # detect's default
    assert cont["sets"]["real"]["occurrences"] == 6
    assert cont["real_clips"]["clips"] == 6 and cont["real_clips"]["trials"] == 36
    # Every held-out voice says every keyword twice (pyadml.spot.evaluate, synth_reps 2).
    truth = (exp / "continuous" / "truth_synth.tsv").read_text().splitlines()
    assert len(truth) == cont["sets"]["synth"]["occurrences"] > 0
    for s in cont["sets"].values():
        assert [r["fa_per_hour"] for r in s["operating_points"]] == [0.5, 1.0, 2.0]
        assert all(0.0 <= r["frr"] <= 1.0 for r in s["operating_points"])
    assert (exp / "continuous" / "det.png").stat().st_size > 0
    assert "FRR @1 FA/h" in out  # the stage-9 table is in the closing summary
    # stage 9 spotted with stage 8's export of this final.pt instead of exporting again
    log = (exp / "log" / "stage9_continuous.log").read_text()
    assert "exp/tiny/onnx is a whole export of exp/tiny/final.pt" in log
    assert not (exp / "continuous" / "onnx").exists()
    # Stage 8 scored the real recordings in the background, beside the test sets: their lines
    # follow the test sets' in its log.
    real = (exp / "log" / "score_wakeword_dev.log").read_text()
    assert real.count("score_clips: 6 clips x 6 keywords") == 9
    spk = json.loads((exp / "results" / "wakeword_dev_floor50_tnorm_words_enrol_spkmean"
                      / "metrics.json").read_text())
    assert spk["speaker_mean"] == {"speakers": 1, "alone": 0} and spk["enrol"] == "tts"
    assert "the user default and each clip less its speaker's mean" in out
    log = (exp / "log" / "stage8_score.log").read_text()
    assert log.index("'tiny, phrase words' of RESULTS.md") < log.index("score_clips: 6 clips")


def test_rerun_skips_every_stage(recipe):
    res = run(recipe, "--synth-size", "tiny", "--train-config", "conf/train_tiny.yaml")
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("already done") == 10


TINY_MODEL = ("model.audio.channels=16 model.audio.embed_dim=32 model.audio.se_bottleneck=8 "
              "model.audio.attention_bottleneck=16 model.text.embed_dim=16 model.text.hidden=16 "
              "model.text.layers=1 model.text.out_dim=32 batch.keywords=8 batch.few=replace "
              "num_workers=0")


def test_ablation_script_trains_two_rows_at_once_and_writes_the_tables(recipe):
    import subprocess

    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("PYTEST")}
    res = subprocess.run(
        ["bash", "local/run_ablation.sh", "--rows", "table1_rp table3_triplet", "--epochs", "1",
         "--jobs", "2", "--train-opts", TINY_MODEL],
        cwd=recipe, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    runs = sorted(p.parent.parent.relative_to(recipe / "exp/ablation").as_posix()
                  for p in (recipe / "exp/ablation").glob("*/seed*/results/metrics.json"))
    assert runs == ["table1_rp/seed1", "table1_rp/seed2", "table3_triplet/seed1"]
    cfg = (recipe / "exp/ablation/table3_triplet/seed1/config.yaml").read_text()
    assert "triplet" in cfg and "epochs: 1" in cfg and "channels: 16" in cfg
    log = (recipe / "exp/ablation/table1_rp/seed2/log/train.rank0.log").read_text()
    threads = max(1, len(__import__("os").sched_getaffinity(0)) // 2)
    assert f"{threads} threads" in log  # two jobs share the cores
    md = (recipe / "RESULTS.md").read_text()
    assert "| table1_rp | " in md and "(n=2)" in md and "| table3_aam | " in md
    assert "not run" in md  # the rows left out say so
    again = subprocess.run(["bash", "local/run_ablation.sh", "--rows", "table3_triplet",
                            "--epochs", "1", "--train-opts", TINY_MODEL],
                           cwd=recipe, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "table3_triplet seed 1: done" in again.stdout


# Tokens a real Kaldi-dir + CTM corpus carries: LDC noise markers, aligner tokens, verbal
# punctuation, partial words, and written forms that the normaliser must spell out.
NON_WORDS = {"[NOISE]": "noise_marker", "<UNK>": "unknown_or_noise_token",
             "<SPOKEN_NOISE>": "unknown_or_noise_token", ",COMMA": "verbal_punctuation",
             "TH-": "partial_word", "!!!": "unpronounceable"}
WRITTEN = {"MR.": "mister", "2ND": "second", "1990S": "nineteen nineties", "O'CLOCK": "o'clock",
           "DON'T": "don't", "ST.": "saint"}


def messy_corpus(src, dest):
    """A copy of a Kaldi dir + CTM with real-world transcripts: upper case, every 4th word a
    non-word token, every 9th a written form; text rewritten to match the CTM, but for the
    words the CTM gives as an OOV symbol. Every 3rd recording is at 44.1 kHz, as a studio
    corpus comes (prepared with --resample)."""
    import soundfile as sf
    from scipy.signal import resample_poly

    dest.mkdir(parents=True)
    for name in ("utt2spk", "spk2utt"):
        (dest / name).write_text((src / name).read_text())
    scp = []
    for n, line in enumerate((src / "wav.scp").read_text().splitlines()):
        rec, path = line.split(maxsplit=1)
        if n % 3 == 0:
            x, rate = sf.read(path, dtype="float32")
            path = dest.parent / "wav44k" / f"{rec}.wav"
            path.parent.mkdir(exist_ok=True)
            sf.write(path, resample_poly(x, 441, rate // 100), 44100, subtype="PCM_24")
        scp.append(f"{rec} {path}\n")
    (dest / "wav.scp").write_text("".join(scp))
    expect = {"resampled": len(scp[::3])}
    lines, words = [], {}
    expect.update(kept=[], dropped={})
    non_words, written = list(NON_WORDS), list(WRITTEN)
    for n, line in enumerate((src / "words.ctm").read_text().splitlines()):
        utt, ch, start, dur, word = line.split()
        if n % 4 == 1:
            token = non_words[(n // 4) % len(non_words)]
            kind = NON_WORDS[token]
            expect["dropped"][kind] = expect["dropped"].get(kind, 0) + 1
        elif n % 9 == 2:
            token = written[(n // 9) % len(written)]
            expect["kept"].append(WRITTEN[token])
        else:
            token = word.upper()
            expect["kept"].append(word)
        lines.append(f"{utt} {ch} {start} {dur} {token}")
        # An aligner's OOV symbol stands for a word the text has (Kaldi's --map-oov).
        oov = token in ("<UNK>", "<SPOKEN_NOISE>")
        words.setdefault(utt, []).append(word.upper() if oov else token)
    (dest / "words.ctm").write_text("\n".join(lines) + "\n")
    (dest / "text").write_text("".join(f"{u} {' '.join(w)}\n" for u, w in words.items()))
    return expect


def test_a_new_recipe_on_a_messy_kaldi_corpus_runs_stages_1_to_8(recipe, tmp_path):
    """The README's "Adding a corpus" steps, followed as written: make the recipe with
    utils/make_recipe.sh, then edit only its db.sh, run.sh set names and local/ script."""
    import re
    import subprocess

    from test_recipe_stage0 import ROOT

    synth = recipe / "data/local/synth"
    expect = messy_corpus(synth / "king_asr_066/data", tmp_path / "mycorpus/data")
    new = tmp_path / "egs/mycorpus"
    res = subprocess.run(["bash", str(ROOT / "utils/make_recipe.sh"), str(new)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    db = (new / "db.sh").read_text()
    db = re.sub(r"^KING_ASR_066=.*$", f"MYCORPUS={tmp_path / 'mycorpus'}", db, flags=re.M)
    for var, name in (("WSJ", "wsj"), ("LIBRIPHRASE", "libriphrase"), ("MUSAN", "musan"),
                      ("RIRS_NOISES", "rirs_noises")):
        db = re.sub(rf"^{var}=.*$", f"{var}={synth / name}", db, flags=re.M)
    # The fixture's six stand-in clips, not ../shared's 300 real ones (minutes of scoring).
    ww = re.findall(r"^WAKEWORD_DEV=.+$", (recipe / "db.sh").read_text(), flags=re.M)[-1]
    db = re.sub(r"^WAKEWORD_DEV=.*$", lambda _: ww, db, flags=re.M)
    (new / "db.sh").write_text(db)
    run_sh = (new / "run.sh").read_text()
    run_sh = run_sh.replace("train_set=king_asr_066_train", "train_set=mycorpus_train")
    run_sh = run_sh.replace("dev_set=king_asr_066_dev", "dev_set=mycorpus_dev")
    (new / "run.sh").write_text(run_sh)
    prep = (new / "local/prepare_manifests.sh").read_text()
    prep = re.sub(r"^prepare king_asr_066 .*$",
                  'prepare kaldi "$MYCORPUS/data" "$out" --ctm "$MYCORPUS/data/words.ctm" '
                  '--name mycorpus --part train --resample', prep, flags=re.M)
    (new / "local/prepare_manifests.sh").write_text(prep)

    # Stage 9 (continuous speech) has nothing corpus-specific; the fixture's run covers it.
    res = run(new, "--nj", "2", "--train-config", "conf/train_tiny.yaml", "--stop-stage", "8")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "nothing to synthesise" in (new / "data/log/stage0_synth.log").read_text()
    assert (f"{expect['resampled']} recording(s) at 44100 Hz are resampled to 16000 Hz"
            in (new / "data/log/stage1_manifests.log").read_text())
    assert "6 clips x 6 keywords" in (new / "exp/tiny/log/stage8_score.log").read_text()
    report = json.loads((new / "data/cuts/report.json").read_text())
    assert report["dropped"]["mycorpus_train"]["dropped_non_words"] == expect["dropped"]
    assert report["dropped"]["mycorpus_train"]["kept"] == len(expect["kept"])
    texts = sorted(c.supervisions[0].text for name in ("mycorpus_train", "mycorpus_dev")
                   for c in CutSet.from_file(new / f"data/cuts/{name}.jsonl.gz"))
    assert texts == sorted(expect["kept"])
    assert "mycorpus_train" in (new / "data/log/stage2_cuts.log").read_text()
    metrics = json.loads((new / "exp/tiny/results/metrics.json").read_text())["sets"]
    assert set(metrics) == {"wsj_test", "wsj_test_aug", "libriphrase_test_lp_e", "libriphrase_test_lp_h"}
    assert "| wsj_test |" in res.stdout


def test_a_detector_model_goes_through_stages_6_to_9(recipe):
    """A baseline detector (the cmcd head) through run.sh: stage 8 scores it with its head and
    leaves out the back-ends that need a cosine (T-norm, words) instead of failing; stage 9
    spots with torch, as the head has no ONNX export."""
    conf = recipe / "conf" / "train_tiny_cmcd.yaml"
    conf.write_text("base: train_tiny.yaml\nepochs: 1\nmodel:\n  head: cmcd\n"
                    "  head_opts: {dim: 16, gru_hidden: 8}\n")
    res = run(recipe, "--stage", "6", "--train-config", str(conf.relative_to(recipe)), "--nj", "2")
    assert res.returncode == 0, res.stdout + res.stderr
    exp = recipe / "exp" / "tiny_cmcd"
    log = (exp / "log" / "stage8_score.log").read_text()
    assert "cmcd detector head: no T-norm or words back-end" in log
    scored = json.loads((exp / "results" / "metrics.json").read_text())["sets"]
    assert {"wsj_test", "libriphrase_test_lp_e", "libriphrase_test_lp_h"} <= set(scored)
    assert not (exp / "results_tnorm").exists() and not (exp / "results_words").exists()
    for name in ("wakeword_dev", "wakeword_dev_vad"):
        assert json.loads((exp / "results" / name / "metrics.json").read_text())["clips"] == 6
    assert json.loads((exp / "continuous" / "metrics.json").read_text())["real_clips"]["clips"] == 6


def test_stage8_fails_naming_the_log_when_the_real_recordings_fail(recipe):
    """Stage 8 scores the real recordings in the background: when that fails, the stage fails
    and names its log, and the test sets beside it were scored all the same."""
    import shutil

    exp = recipe / "exp" / "tiny_broken"
    shutil.copytree(recipe / "exp" / "tiny", exp, ignore=shutil.ignore_patterns(".lock"))
    broken = recipe / "broken_wakeword"
    broken.mkdir()
    (broken / "clips.tsv").write_text("audio/missing.flac\talexa\naudio/missing.flac\tjarvis\n")
    db = recipe / "db.sh"
    kept = db.read_text()
    db.write_text(kept + f"WAKEWORD_DEV={broken}\n")
    try:
        res = run(recipe, "--stage", "8", "--stop-stage", "8", "--train-config",
                  "conf/train_tiny.yaml", "--tag", "tiny_broken", "--nj", "2")
    finally:
        db.write_text(kept)
    assert res.returncode != 0, res.stdout
    # The copied stage-8 marker names the other set's list: another WAKEWORD_DEV reruns.
    assert "broken_wakeword/clips.tsv" in res.stdout
    log = (exp / "log" / "stage8_score.log").read_text()
    assert "scoring the real recordings failed (exp/tiny_broken/log/score_wakeword_dev.log)" in log
    assert "broken_wakeword/clips.tsv:1: no such audio file" in (
        exp / "log" / "score_wakeword_dev.log").read_text()
    assert "'tiny_broken, phrase words' of RESULTS.md" in log
    assert not (exp / ".done" / "stage_8.done").exists()


def test_a_wrong_wakeword_dev_in_db_sh_stops_the_run_before_any_stage(recipe):
    """db.sh's WAKEWORD_DEV set to a directory without clips.tsv is an error naming it, raised
    before stage 0 rather than after training; a run that stops before stage 8 never reads it."""
    wrong = recipe / "no_such_wakeword_dir"
    db = recipe / "db.sh"
    kept = db.read_text()
    db.write_text(kept + f"WAKEWORD_DEV={wrong}\n")
    try:
        res = run(recipe, "--synth-size", "tiny", "--train-config", "conf/train_tiny.yaml")
        # (stages 0 and 1 read db.sh: a run of them would redo the fixture's data)
        early = run(recipe, "--synth-size", "tiny", "--nj", "2", "--stage", "5", "--stop-stage", "5")
    finally:
        db.write_text(kept)
    assert res.returncode != 0
    assert f"WAKEWORD_DEV={wrong}, which has no clips.tsv" in res.stderr
    assert "Stage 0" not in res.stdout and "already done" not in res.stdout
    assert early.returncode == 0, early.stderr
    assert early.stdout.count("already done") == 1
