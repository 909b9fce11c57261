"""egs/librispeech_libriphrase/run.sh stages 0-9 on the tiny embedded corpora (a LibriSpeech
stand-in in LibriSpeech's layout with word alignments, LibriPhrase, MUSAN, RIRs), on a copy of
the recipe; and its train/test speaker check failing on an overlapping configuration."""

import json
import re
from pathlib import Path

import pytest
import soundfile as sf
from lhotse import CutSet, load_manifest

from pyadml.data.prepare.librispeech import read_speakers
from pyadml.synth.voices import engine_available

from test_recipe_stage0 import copy_recipe, run
from test_recipe_stages import KEYWORDS, wakeword_set

pytestmark = [pytest.mark.slow, pytest.mark.recipe_run,
              pytest.mark.skipif(not engine_available(), reason="espeak-ng/flite/festival missing")]

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "egs" / "librispeech_libriphrase"


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    recipe = copy_recipe(tmp_path_factory.mktemp("egs") / "librispeech_libriphrase", RECIPE)
    ww = wakeword_set(tmp_path_factory.mktemp("wakeword"))
    with open(recipe / "db.sh", "a") as f:
        f.write(f"WAKEWORD_DEV={ww}\n")
    res = run(recipe, "--synth-size", "tiny", "--nj", "2", "--train-config", "conf/train_tiny.yaml")
    assert res.returncode == 0, res.stdout + res.stderr
    (recipe / "run.out").write_text(res.stdout)
    return recipe


def test_stage0_librispeech_layout(recipe):
    root = recipe / "data/local/synth/librispeech/LibriSpeech"
    speakers = read_speakers(root / "SPEAKERS.TXT")
    assert {s["subset"] for s in speakers.values()} == {
        "train-clean-100", "train-clean-360", "train-other-500", "test-clean"}
    flacs = sorted(root.rglob("*.flac"))
    for f in flacs:
        spk, chapter, _ = f.stem.split("-")
        assert f.parent == root / speakers[spk]["subset"] / spk / chapter
    assert sf.info(str(flacs[0])).format == "FLAC"
    for trans in root.rglob("*.trans.txt"):
        text = trans.read_text()
        assert text == text.upper()
        ali = trans.with_name(trans.name.replace(".trans.txt", ".alignment.txt")).read_text()
        assert [l.split()[0] for l in ali.splitlines()] == [l.split()[0] for l in text.splitlines()]
        assert re.fullmatch(r'(\S+ "[^" ]*" "[\d.,]+"\n)+', ali)
    # LibriPhrase's speakers are LibriSpeech numbers, of the held-out voices of train-other-500
    lp = (recipe / "data/local/synth/libriphrase/data/libriphrase_diffspk_all_1word.csv").read_text()
    spk = {row.split(",")[1] for row in lp.splitlines()[1:]}
    assert spk and all(speakers[s]["subset"] == "train-other-500" for s in spk)


def test_stage1_and_2_words_the_aligner_marked_never_become_cuts(recipe):
    m = recipe / "data/manifests"
    sups = load_manifest(m / "librispeech_supervisions_train.jsonl.gz")
    speakers = read_speakers(recipe / "data/local/synth/librispeech/LibriSpeech/SPEAKERS.TXT")
    assert {speakers[s.speaker]["subset"] for s in sups} == {"train-clean-100", "train-clean-360"}
    symbols = [w.symbol for s in sups for w in s.alignment["word"]]
    unknown = symbols.count("<unk>")
    assert unknown >= 1 and not {"", "sil", "sp", "spn"} & set(symbols)
    assert "check-disjoint: no speaker in common" in (recipe / "data/log/stage1_manifests.log").read_text()
    report = json.loads((recipe / "data/cuts/report.json").read_text())["dropped"]["librispeech_train"]
    assert report["dropped_non_words"] == {"unknown_or_noise_token": unknown}
    cuts = [c for n in ("librispeech_train", "librispeech_train_dev")
            for c in CutSet.from_file(recipe / f"data/cuts/{n}.jsonl.gz")]
    assert len(cuts) == report["kept"] == len(symbols) - unknown
    assert all(c.supervisions[0].text.isalpha() for c in cuts)


def test_stages_3_to_8(recipe):
    exp = recipe / "exp/tiny"
    metrics = json.loads((exp / "results/metrics.json").read_text())["sets"]
    assert set(metrics) == {"libriphrase_test_lp_e", "libriphrase_test_lp_h"}
    for v in metrics.values():
        assert 0.0 <= v["EER"] <= 1.0 and 0.0 <= v["AUC"] <= 1.0
    assert (recipe / "data/fbank/librispeech_train_aug.jsonl.gz").is_file()
    assert "| libriphrase_test_lp_h |" in (recipe / "run.out").read_text()
    # No augmented test set in this recipe: stage 3's header names none (it read "and of :").
    assert "== Stage 3: augmentation of librispeech_train: RIRs" in (recipe / "run.out").read_text()
    # Stage 8 also scores the phrases word by word: single-word trials keep the clip cosine,
    # multi-word ones are fused with their words (pyadml.score.phrase, tested there).
    assert "scored word by word" in (recipe / "run.out").read_text()
    for name in ("libriphrase_test_lp_e", "libriphrase_test_lp_h"):
        clip = [r.split("\t") for r in (exp / "results" / name / "scores.tsv").read_text().splitlines()]
        words = [r.split("\t") for r in (exp / "results_words" / name / "scores.tsv").read_text().splitlines()]
        assert [r[:4] for r in clip] == [r[:4] for r in words]
        multi = [len(c[1].split()) > 1 for c in clip]
        assert any(multi) and not all(multi)
        assert all(c[-1] == w[-1] for c, w, m in zip(clip, words, multi) if not m)
        assert any(c[-1] != w[-1] for c, w, m in zip(clip, words, multi) if m)


def test_stage8_scores_tnorm_and_the_real_recordings(recipe):
    """As egs/wsj_librikws's stage 8: the trials again with T-norm, and db.sh's WAKEWORD_DEV
    as recorded and as score_clips scores a user's clips (the floor, T-norm and the words)."""
    exp = recipe / "exp/tiny"
    out = (recipe / "run.out").read_text()
    cosine = json.loads((exp / "results/metrics.json").read_text())["sets"]
    tnorm = json.loads((exp / "results_tnorm/metrics.json").read_text())["sets"]
    assert set(tnorm) == set(cosine)
    for name in tnorm:
        clip = (exp / "results" / name / "scores.tsv").read_text().splitlines()
        normed = (exp / "results_tnorm" / name / "scores.tsv").read_text().splitlines()
        assert len(clip) == len(normed) and clip != normed
    assert "adaptive T-norm" in out and "tiny, T-norm" in (recipe / "RESULTS.md").read_text()
    spk = json.loads((exp / "results_tnorm_spkmean/metrics.json").read_text())["sets"]
    assert set(spk) == set(cosine) and "tiny, T-norm, speaker mean" in (recipe / "RESULTS.md").read_text()
    rows = (("wakeword_dev", None, "none", "clip", "none"),
            ("wakeword_dev_floor50_tnorm_words", 50.0, "tnorm", "words", "none"),
            ("wakeword_dev_floor50_tnorm_words_enrol", 50.0, "tnorm", "words", "tts"))
    for name, floor, norm, phrase, enrol in rows:
        m = json.loads((exp / "results" / name / "metrics.json").read_text())
        assert m["clips"] == 6 and sorted(m["keywords"]) == KEYWORDS
        assert (m["floor_db"], m["score_norm"], m["phrase_score"], m["enrol"]) == (floor, norm, phrase, enrol)
    assert "Real recordings" in out and "6 clips x 6 keywords" in out
    assert "TTS enrolment (score_pairs' and score_clips' default)" in out
    assert (exp / "results_enrol" / "metrics.json").is_file()
    # the stand-in names its clips' speaker: the user default with the speaker mean too
    spk = json.loads((exp / "results/wakeword_dev_floor50_tnorm_words_enrol_spkmean/metrics.json").read_text())
    assert spk["speaker_mean"] == {"speakers": 1, "alone": 0}
    # the words' windows went through the ONNX export of this final.pt (its parity printed)
    assert "onnxruntime vs torch max abs diff" in (exp / "log/export_onnx.log").read_text()
    assert not (exp / "results/wakeword_dev_vad").exists()


def test_stage9_spots_keywords_in_test_clean(recipe):
    """Stage 9 as egs/wsj_librikws's, its streams made of the test-clean stand-in's utterances
    (held-out voices under speaker numbers of their own, none of them training)."""
    exp = recipe / "exp/tiny"
    sups = load_manifest(recipe / "data/manifests/librispeech_supervisions_test_clean.jsonl.gz")
    speakers = read_speakers(recipe / "data/local/synth/librispeech/LibriSpeech/SPEAKERS.TXT")
    assert sups and {speakers[s.speaker]["subset"] for s in sups} == {"test-clean"}
    assert all(s.alignment is None for s in sups)  # stage 9 needs no word times
    log = (recipe / "data/log/stage1_manifests.log").read_text()
    assert re.search(r"no speaker in common: librispeech_train \d+ speakers, libriphrase_test \d+ "
                     r"speakers, librispeech_test_clean [1-9]\d* speakers", log), log
    cont = json.loads((exp / "continuous/metrics.json").read_text())
    assert set(cont["sets"]) == {"synth", "real"}
    assert cont["real_clips"]["clips"] == 6 and cont["sets"]["real"]["occurrences"] == 6
    # the background is test-clean's speech that says no keyword
    hours = sum(s.duration for s in sups) / 3600
    for v in cont["sets"].values():
        assert 0 < v["background_hours"] <= hours + 1e-6
        assert [r["fa_per_hour"] for r in v["operating_points"]] == [0.5, 1.0, 2.0]
    out = (recipe / "run.out").read_text()
    assert "Keyword spotting in continuous speech" in out and "FRR @1 FA/h" in out
    assert "exp/tiny/onnx is a whole export of exp/tiny/final.pt" in (
        exp / "log/stage9_continuous.log").read_text()


def test_rerun_skips_every_stage(recipe):
    res = run(recipe, "--synth-size", "tiny", "--train-config", "conf/train_tiny.yaml")
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("already done") == 10


def test_without_a_continuous_part_stage9_is_skipped_and_a_missing_one_is_named(recipe, tmp_path):
    res = run(recipe, "--synth-size", "tiny", "--train-config", "conf/train_tiny.yaml",
              "--stage", "9", "--continuous-part", "")
    assert res.returncode == 0, res.stderr
    assert "Stage 9 skipped: no continuous speech" in res.stdout
    # A corpus without the subset stops stage 1 before any manifest is written, saying what to do.
    new = copy_recipe(tmp_path / "r", RECIPE)
    db = (new / "db.sh").read_text()
    ls = recipe / "data/local/synth/librispeech/LibriSpeech"
    (new / "db.sh").write_text(re.sub(r"^LIBRISPEECH=$", f"LIBRISPEECH={ls}", db, flags=re.M))
    res = run(new, "--continuous-part", "test-other", "--stage", "1", "--stop-stage", "1")
    assert res.returncode != 0 and not (new / "data/manifests").exists()
    assert "has no test-other/ for stage 9's continuous speech" in res.stderr + (
        new / "data/log/stage1_manifests.log").read_text()


def test_training_on_train_other_500_fails_naming_the_shared_speakers(recipe, tmp_path):
    """LibriPhrase's pairs come from train-other-500: training on it must stop at stage 1."""
    synth = recipe / "data/local/synth"
    new = copy_recipe(tmp_path / "r", RECIPE)
    db = (new / "db.sh").read_text()
    for var, name in (("LIBRISPEECH", "librispeech/LibriSpeech"), ("LIBRIPHRASE", "libriphrase"),
                      ("MUSAN", "musan"), ("RIRS_NOISES", "rirs_noises")):
        db = re.sub(rf"^{var}=$", f"{var}={synth / name}", db, flags=re.M)
    (new / "db.sh").write_text(db)
    res = run(new, "--train-parts", "train-clean-100 train-other-500", "--stop-stage", "2")
    assert res.returncode != 0
    log = (new / "data/log/stage1_manifests.log").read_text()
    speakers = read_speakers(synth / "librispeech/LibriSpeech/SPEAKERS.TXT")
    lp = {row.split(",")[k] for f in (synth / "libriphrase/data").glob("*.csv")
          for row in f.read_text().splitlines()[1:] for k in (1, 5)}
    other = sorted((s for s, v in speakers.items() if v["subset"] == "train-other-500" and s in lp
                    and float(v["minutes"]) > 0), key=int)
    assert other
    shared = re.search(r"librispeech_train and test set libriphrase_test share (\d+) "
                       r"speaker\(s\): ([\d, ]+)\.", log)
    assert shared, log
    assert shared.group(2).split(", ") == other and int(shared.group(1)) == len(other)
    assert not (new / "data/.done/stage_1.done").exists()
    assert not (new / "data/cuts").exists()
    # Skipping stage 1 does not get round it: the same check guards the later stages.
    res = run(new, "--train-parts", "train-clean-100 train-other-500", "--stage", "2", "--stop-stage", "2")
    assert res.returncode != 0 and shared.group(0) in res.stderr
    assert not (new / "data/cuts").exists()
