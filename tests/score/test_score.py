import json

import numpy as np
import pytest
import soundfile as sf
import torch
from lhotse import CutSet, Recording, SupervisionSegment
from scipy.signal import resample_poly

from pyadml.bin import score as score_cli
from pyadml.bin import score_pairs
from pyadml.score.pairs import features_for
from pyadml.data.dataset import mean_normalize
from pyadml.data.features import compute_fbank, fbank_extractor, save_cuts
from pyadml.data.trials import Trial, write_trials
from pyadml.models import EcapaConfig, KwsModel, TextEncoderConfig
from pyadml.models.export import export_model, load_model
from pyadml.score.embed import embed_cuts, embed_texts, score_trials
from pyadml.score.metrics import average_precision
from pyadml.score.report import results_table, update_results_md
from pyadml.text import G2P, PhoneTable, Tokenizer

PHONES = list(G2P().inventory)
AUDIO = {"channels": 16, "embed_dim": 16, "se_bottleneck": 8, "attention_bottleneck": 8}
TEXT = {"embed_dim": 16, "hidden": 16, "layers": 1, "out_dim": 16}
FBANK = {"num_mel_bins": 40, "frame_length": 0.025, "frame_shift": 0.01, "dither": 0.0}
WORDS = ["hello", "world", "music", "water", "yellow", "table"]
SEEN = {"hello", "world", "music"}


def tiny_model_file(path, seed=0, cohort=(), floor_db=None):
    """A random tiny cosine model as final.pt; ``floor_db``: as if trained with that floor."""
    torch.manual_seed(seed)
    model = KwsModel.from_configs(EcapaConfig(**AUDIO),
                                  TextEncoderConfig(vocab_size=len(PHONES) + 1, **TEXT))
    # Non-default running stats, so eval-mode BN is not the identity.
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm1d):
            mod.running_mean.normal_(0, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
    export_model(model.state_dict(), path, audio_config=AUDIO, text_config=TEXT,
                 tokenizer=Tokenizer(PhoneTable(PHONES), {}),
                 features={**FBANK, "mean_norm": True, **({"floor_db": floor_db} if floor_db else {})},
                 meta={"test": True}, cohort=cohort)
    return path


def write_noise(path, seconds, rate=16000, seed=0, channels=1):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = 0.2 * np.sin(2 * np.pi * (200 + 100 * seed) * t) + 0.05 * rng.standard_normal(t.size)
    if channels > 1:
        x = np.stack([x, 0.5 * x + 0.01 * rng.standard_normal(t.size)], axis=1)
    sf.write(path, x.astype(np.float32), rate, subtype="FLOAT")
    return path


def make_cuts(tmp_path, name, items):
    """items: (cut id, word, speaker, seconds) -> fbank manifest under tmp/fbank/<name>."""
    cuts = []
    (tmp_path / "wav").mkdir(exist_ok=True)
    for i, (cid, word, spk, seconds) in enumerate(items):
        wav = write_noise(tmp_path / "wav" / f"{cid}.wav", seconds, seed=i)
        rec = Recording.from_file(wav, recording_id=cid)
        cut = rec.to_cut()
        cut.id = cid
        cut.supervisions = [SupervisionSegment(id=cid, recording_id=cid, start=0.0,
                                               duration=rec.duration, text=word, speaker=spk)]
        cuts.append(cut)
    raw = tmp_path / f"{name}_raw.jsonl.gz"
    save_cuts(CutSet.from_cuts(cuts), raw)
    out = tmp_path / "fbank" / f"{name}.jsonl.gz"
    compute_fbank(raw, tmp_path / "fbank" / f"{name}_feats", out, FBANK)
    return out


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("score")
    wsj = [(f"w{i}", WORDS[i], f"spk{i % 2}", 0.3 + 0.07 * i) for i in range(6)]
    lp = [(f"lp{i}", w, f"lspk{i}", 0.4 + 0.1 * i) for i, w in enumerate(["hello world", "music", "water table", "yellow"])]
    make_cuts(tmp, "wsj_test", wsj)
    make_cuts(tmp, "libriphrase_test", lp)
    trials_dir = tmp / "trials"
    wsj_trials = []
    for cid, word, _, _ in wsj:
        for w in WORDS:
            wsj_trials.append(Trial(cid, w, int(w == word), "seen" if w in SEEN else "unseen"))
    write_trials(trials_dir / "wsj_test.tsv", wsj_trials)
    lp_e = [Trial("lp0", "hello world", 1, "diffspk_positive"), Trial("lp0", "music", 0, "diffspk_easyneg"),
            Trial("lp1", "music", 1, "diffspk_positive"), Trial("lp1", "hello world", 0, "diffspk_easyneg")]
    lp_h = [Trial("lp0", "hello world", 1, "diffspk_positive"), Trial("lp2", "water table", 1, "diffspk_positive"),
            Trial("lp2", "water", 0, "diffspk_hardneg"), Trial("lp3", "yellow", 1, "diffspk_positive"),
            Trial("lp3", "hello", 0, "diffspk_hardneg")]
    write_trials(trials_dir / "libriphrase_test_lp_e.tsv", lp_e)
    write_trials(trials_dir / "libriphrase_test_lp_h.tsv", lp_h)
    model = tiny_model_file(tmp / "exp" / "tiny" / "final.pt")
    return tmp, model


def test_score_trials_equals_a_cosine_loop():
    rng = np.random.default_rng(0)
    audio = {f"c{i}": rng.normal(size=16).astype(np.float32) for i in range(50)}
    text = {f"k{i}": rng.normal(size=16).astype(np.float32) for i in range(30)}
    audio["zero"] = np.zeros(16, np.float32)
    trials = [Trial(f"c{rng.integers(50)}", f"k{rng.integers(30)}", int(rng.integers(2)))
              for _ in range(500)] + [Trial("zero", "k0", 0)]
    got = score_trials(trials, audio, text)
    want = [float(audio[t.cut_id] @ text[t.keyword]
                  / max(np.linalg.norm(audio[t.cut_id]) * np.linalg.norm(text[t.keyword]), 1e-16))
            for t in trials]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert got[-1] == 0.0  # a zero embedding scores 0, not NaN
    torch_cos = torch.nn.functional.cosine_similarity(
        torch.from_numpy(np.stack([audio[t.cut_id] for t in trials[:10]])),
        torch.from_numpy(np.stack([text[t.keyword] for t in trials[:10]])), dim=-1)
    np.testing.assert_allclose(got[:10], torch_cos.numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(KeyError, match="no audio embedding"):
        score_trials([Trial("nope", "k0", 1)], audio, text)
    with pytest.raises(KeyError, match="no text embedding"):
        score_trials([Trial("c0", "nope", 1)], audio, text)


def test_embeddings_do_not_depend_on_batching(fixture):
    tmp, model_path = fixture
    loaded = load_model(model_path)
    cuts = list(CutSet.from_file(tmp / "fbank" / "wsj_test.jsonl.gz"))
    batched = embed_cuts(loaded.model, cuts + cuts[:2], batch_size=4)  # duplicates embedded once
    assert sorted(batched) == sorted(c.id for c in cuts)
    for c in cuts:
        x = torch.from_numpy(mean_normalize(c.load_features()))[None]
        with torch.inference_mode():
            alone = loaded.model.embed_audio(x).utt[0].numpy()
        np.testing.assert_allclose(batched[c.id], alone, rtol=1e-4, atol=1e-5)
    texts = embed_texts(loaded.model, WORDS + ["hello world", "hello"], loaded.tokenizer,
                        batch_size=3)
    assert len(texts) == len(WORDS) + 1
    ids = torch.tensor([loaded.phone_ids("hello world")])
    with torch.inference_mode():
        alone = loaded.model.embed_text(ids).utt[0].numpy()
    np.testing.assert_allclose(texts["hello world"], alone, rtol=1e-4, atol=1e-5)


def test_score_end_to_end(fixture, capsys):
    tmp, model_path = fixture
    out = tmp / "exp" / "tiny" / "results"
    results_md = tmp / "RESULTS.md"
    argv = ["--exp-dir", str(tmp / "exp" / "tiny"), "--fbank-dir", str(tmp / "fbank"),
            "--trials-dir", str(tmp / "trials"), "--results-md", str(results_md), "--tag", "tiny",
            "wsj_test:words", "libriphrase_test:pairs"]
    assert score_cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "| wsj_test |" in printed and "| libriphrase_test_lp_h |" in printed

    for name in ("wsj_test", "libriphrase_test_lp_e", "libriphrase_test_lp_h"):
        trials = (tmp / "trials" / f"{name}.tsv").read_text().splitlines()
        rows = (out / name / "scores.tsv").read_text().splitlines()
        assert len(rows) == len(trials)
        for trial, row in zip(trials, rows):
            head, score = row.rsplit("\t", 1)
            assert head == trial and -1.0 <= float(score) <= 1.0

    m = json.loads((out / "metrics.json").read_text())["sets"]
    assert set(m) == {"wsj_test", "libriphrase_test_lp_e", "libriphrase_test_lp_h"}
    assert {"AP", "AP_seen", "AP_unseen", "AP_per_speaker", "EER"} <= set(m["wsj_test"])
    assert set(m["wsj_test"]["AP_per_speaker"]) == {"spk0", "spk1"}
    for name in ("libriphrase_test_lp_e", "libriphrase_test_lp_h"):
        assert {"EER", "AUC", "EER_batch"} <= set(m[name])
    for png in ("roc.png", "det.png", "pr.png"):
        assert (out / png).stat().st_size > 1000
    assert (out / "results.md").read_text().startswith("| test set |")

    # Scores agree with embedding a trial's audio and text directly.
    loaded = load_model(model_path)
    cut = next(c for c in CutSet.from_file(tmp / "fbank" / "libriphrase_test.jsonl.gz") if c.id == "lp2")
    with torch.inference_mode():
        a = loaded.model.embed_audio(torch.from_numpy(mean_normalize(cut.load_features()))[None]).utt
        t = loaded.model.embed_text(torch.tensor([loaded.phone_ids("water")])).utt
    row = [r for r in (out / "libriphrase_test_lp_h" / "scores.tsv").read_text().splitlines()
           if r.startswith("lp2\twater\t")][0]
    assert float(row.split("\t")[-1]) == pytest.approx(float(KwsModel.score(a, t)), abs=1e-5)

    # The unseen AP uses the unseen-keyword trials only.
    rows = [r.split("\t") for r in (out / "wsj_test" / "scores.tsv").read_text().splitlines()]
    uns = [(float(r[4]), int(r[2])) for r in rows if r[3] == "unseen"]
    assert m["wsj_test"]["AP_unseen"] == pytest.approx(average_precision(*zip(*uns)))

    text = results_md.read_text()
    assert "## tiny" in text and "git commit:" in text and "pyadml.bin.score" in text


def test_a_results_md_that_is_not_utf8_is_refused_before_scoring(fixture, capsys):
    tmp, _ = fixture
    results_md = tmp / "latin1" / "RESULTS.md"
    results_md.parent.mkdir()
    old = "# Results\n\nMy notes on the r\u00e9sum\u00e9 keyword.\n".encode("latin-1")
    results_md.write_bytes(old)
    out = tmp / "latin1" / "results"
    argv = ["--exp-dir", str(tmp / "exp" / "tiny"), "--fbank-dir", str(tmp / "fbank"),
            "--trials-dir", str(tmp / "trials"), "--results-md", str(results_md),
            "--out-dir", str(out), "--tag", "tiny", "wsj_test:words"]
    assert score_cli.main(argv) == 1  # before: a UnicodeDecodeError traceback after scoring
    err = capsys.readouterr().err
    assert f"{results_md}:3: not UTF-8 text" in err and "iconv" in err
    assert results_md.read_bytes() == old and not out.exists()


def test_a_set_of_one_class_gets_a_row_of_dashes_and_says_why(fixture, capsys):
    """A user's own set with positives only (or negatives only): AP and EER are undefined. Its
    row says how many trials and '-'; before, the row was left out of the table (and an only
    set gave RESULTS.md a table without rows)."""
    tmp, _ = fixture
    trials = tmp / "one_class"
    write_trials(trials / "wsj_test.tsv", [Trial(f"w{i}", WORDS[i], 1) for i in range(6)])
    for sub in ("lp_e", "lp_h"):
        (trials / f"libriphrase_test_{sub}.tsv").write_text(
            (tmp / "trials" / f"libriphrase_test_{sub}.tsv").read_text())
    out = tmp / "one_class_results"
    results_md = tmp / "one_class_RESULTS.md"
    argv = ["--exp-dir", str(tmp / "exp" / "tiny"), "--fbank-dir", str(tmp / "fbank"),
            "--trials-dir", str(trials), "--out-dir", str(out), "--results-md", str(results_md),
            "--tag", "mine", "wsj_test:words", "libriphrase_test:pairs"]
    assert score_cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert ("score: wsj_test: all 6 trials are positive (no negative): AP, EER and AUC need "
            "both; its row shows '-'") in printed
    row = "| wsj_test | 6 | - | - | - | - |"  # trials, AP, EER, AUC, EER batch-avg
    assert row in printed and row in results_md.read_text()
    assert "| libriphrase_test_lp_e | 4 |" in printed
    m = json.loads((out / "metrics.json").read_text())["sets"]
    assert m["wsj_test"] == {"num_trials": 6, "num_positives": 6} and "AP" in m["libriphrase_test_lp_e"]

    write_trials(trials / "wsj_test.tsv", [Trial(f"w{i}", WORDS[(i + 1) % 6], 0) for i in range(6)])
    assert score_cli.main(argv[:-1]) == 0
    assert "all 6 trials are negative (no positive)" in capsys.readouterr().out
    (trials / "wsj_test.tsv").write_text("")
    assert score_cli.main(argv[:-1]) == 1
    assert f"the trial list {trials / 'wsj_test.tsv'} is empty" in capsys.readouterr().err


def test_a_test_set_without_trials_is_an_error_naming_it(fixture, capsys):
    tmp, _ = fixture
    base = ["--exp-dir", str(tmp / "exp" / "tiny"), "--fbank-dir", str(tmp / "fbank"),
            "--trials-dir", str(tmp / "trials"), "--out-dir", str(tmp / "elsewhere")]
    assert score_cli.main(base + ["wsj_test:pairs"]) == 1
    err = capsys.readouterr().err
    assert "test set wsj_test" in err and "wsj_test_lp_e.tsv" in err
    assert score_cli.main(base + ["wsj_test_aug:words"]) == 1
    err = capsys.readouterr().err
    assert "test set wsj_test_aug" in err and "wsj_test_aug.jsonl.gz" in err
    assert score_cli.main(base + ["wsj_test:oops"]) == 1
    assert "protocol" in capsys.readouterr().err
    assert not (tmp / "elsewhere").exists()


def test_results_md_sections_are_replaced_in_place(tmp_path):
    path = tmp_path / "RESULTS.md"
    t1 = results_table({"wsj_clean": {"num_trials": 10, "AP": 0.5}})
    assert "| wsj_clean | 10 | 50.00 |" in t1
    update_results_md(path, "a", t1, "conf/a.yaml", "abc123", "cmd a")
    update_results_md(path, "b", results_table({"lp_e": {"EER": 0.1, "AUC": 0.9}}), None, None, None)
    update_results_md(path, "a", results_table({"wsj_clean": {"num_trials": 10, "AP": 0.75}}),
                      "conf/a.yaml", "def456", "cmd a2")
    text = path.read_text()
    assert text.startswith("# Results")
    assert text.count("## a") == 1 and text.count("## b") == 1
    assert text.index("## a") < text.index("## b")  # kept in place
    assert "75.00" in text and "50.00" not in text and "def456" in text and "abc123" not in text
    assert "git commit: `unknown`" in text


def test_results_md_keeps_the_notes_a_user_wrote_below_a_section_it_rewrites(tmp_path):
    path = tmp_path / "RESULTS.md"
    for tag in ("exp1", "exp2"):
        update_results_md(path, tag, results_table({"wsj": {"num_trials": 10, "AP": 0.5}}),
                          "c.yaml", "abc", f"cmd {tag}")
    note = "My note: exp1 ran with lr 0.1.\n\n### A table of my own\n\n| x |\n|---|\n| 1 |"
    path.write_text(path.read_text().replace("- command: `cmd exp1`\n",
                                             "- command: `cmd exp1`\n\n" + note + "\n")
                    + "\n## mine\n\nwritten by hand\n")
    for ap in (0.7, 0.8):  # rescored twice: the notes once, below the new lines
        update_results_md(path, "exp1", results_table({"wsj": {"num_trials": 10, "AP": ap}}),
                          "c.yaml", "def", "cmd exp1 again")
    update_results_md(path, "mine", results_table({"wsj": {"num_trials": 10, "AP": 0.9}}),
                      None, None, None)
    text = path.read_text()
    assert text.count(note) == 1 and "80.00" in text and "70.00" not in text
    assert text.index("cmd exp1 again") < text.index(note) < text.index("## exp2")
    assert text.count("## exp1") == 1 and text.count("## exp2") == 1
    assert text.index("90.00") < text.index("written by hand")  # a section of its own: all notes


def test_results_md_with_two_sections_of_one_title_rewrites_the_first_and_keeps_the_second(tmp_path):
    path = tmp_path / "RESULTS.md"
    update_results_md(path, "exp1", results_table({"wsj": {"num_trials": 10, "AP": 0.5}}),
                      "c.yaml", "abc", "cmd exp1")
    # a second copy of the section, e.g. pasted from another clone's file, with its own figures
    pasted = "## exp1\n\n| test set | AP (%) |\n|---|---:|\n| wsj | 61.00 |\n\nfrom my laptop\n"
    path.write_text(path.read_text() + "\n" + pasted)
    update_results_md(path, "exp1", results_table({"wsj": {"num_trials": 10, "AP": 0.7}}),
                      "c.yaml", "def", "cmd exp1 again")
    text = path.read_text()
    assert text.count("## exp1") == 2 and "50.00" not in text
    assert text.index("70.00") < text.index(pasted)


def test_results_md_saved_with_windows_line_ends_keeps_them_and_its_text(tmp_path):
    path = tmp_path / "RESULTS.md"
    update_results_md(path, "exp1", results_table({"wsj": {"num_trials": 10, "AP": 0.5}}),
                      "c.yaml", "abc", "cmd exp1")
    text = path.read_text().replace("# Results\n", "# Results\n\nMy runs, by hand.\n") + "\nA note.\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())  # Notepad's save
    update_results_md(path, "exp1", results_table({"wsj": {"num_trials": 10, "AP": 0.7}}),
                      "c.yaml", "def", "cmd exp1 again")
    update_results_md(path, "exp2", results_table({"wsj": {"num_trials": 10, "AP": 0.6}}),
                      None, None, None)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf# Results\r\n\r\nMy runs, by hand.\r\n")
    assert raw.count(b"\n") == raw.count(b"\r\n") and b"\r\r" not in raw  # no mixed line ends
    text = raw.decode("utf-8-sig").replace("\r\n", "\n")
    assert text.count("## exp1") == 1 and "70.00" in text and "50.00" not in text
    assert text.index("cmd exp1 again") < text.index("A note.") < text.index("## exp2")


def _write_slowly(path, title, barrier):
    barrier.wait()
    update_results_md(path, title, results_table({"wsj_test": {"num_trials": 10, "AP": 0.5}}),
                      None, None, f"cmd {title}")


def test_results_md_written_by_two_experiments_at_once_keeps_both_sections(tmp_path, monkeypatch):
    """Two experiments' stage 8 share RESULTS.md: each reads it, adds its section and renames
    its copy into place. Without a lock the second rename dropped the first one's section."""
    import multiprocessing
    import time

    from pyadml.score import report

    path = tmp_path / "RESULTS.md"
    update_results_md(path, "mine", "| a |\n", None, None, None)
    write = report.write_text_atomic

    def slow(p, text):  # between the read and the rename, as a long RESULTS.md gives time for
        time.sleep(0.5)
        write(p, text)

    monkeypatch.setattr(report, "write_text_atomic", slow)
    ctx = multiprocessing.get_context("fork")  # the children inherit the slow write
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_write_slowly, args=(path, t, barrier)) for t in ("exp_a", "exp_b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    text = path.read_text()
    assert "## mine" in text and "## exp_a" in text and "## exp_b" in text, text
    assert "cmd exp_a" in text and "cmd exp_b" in text


# ---- score_pairs -------------------------------------------------------------------------

def _pairs(tmp_path, lines, name="pairs.tsv"):
    p = tmp_path / name
    p.write_text("".join(line + "\n" for line in lines))
    return p


def test_score_pairs_resamples_and_mixes_down(fixture, tmp_path, capsys):
    _, model_path = fixture
    st8 = write_noise(tmp_path / "st8.wav", 0.6, rate=8000, seed=3, channels=2)
    # Our own 16 kHz mono version of the same audio.
    x, sr = sf.read(st8, dtype="float32", always_2d=True)
    mono16 = resample_poly(x.mean(axis=1), 2, 1)
    sf.write(tmp_path / "mono16.wav", mono16.astype(np.float32), 16000, subtype="FLOAT")
    neg = write_noise(tmp_path / "neg.wav", 0.5, seed=5)
    pairs = _pairs(tmp_path, [f"{st8}\thello\t1", f"{tmp_path / 'mono16.wav'}\thello\t1",
                              f"{neg}\thello\t0", f"{neg}\tmusic\t0", f"{st8}\tmusic\t0"])
    out = tmp_path / "scores.tsv"
    assert score_pairs.main(["--model", str(model_path), "--pairs", str(pairs), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "AP " in printed and "EER " in printed and "AUC " in printed
    rows = out.read_text().splitlines()
    assert len(rows) == 5
    inputs = pairs.read_text().splitlines()
    scores = []
    for inp, row in zip(inputs, rows):
        head, s = row.rsplit("\t", 1)
        assert head == inp
        scores.append(float(s))
    assert np.all(np.isfinite(scores))
    assert abs(scores[0] - scores[1]) < 1e-3


def test_score_pairs_features_match_training(fixture, tmp_path):
    """Same fbank as lhotse computes for a cut in training (before lilcom compression)."""
    wav = write_noise(tmp_path / "a.wav", 0.7, seed=2)
    ext = fbank_extractor(FBANK)
    ours = features_for(wav, ext, 16000, mean_norm=True)
    cut = Recording.from_file(wav).to_cut()
    ref = mean_normalize(cut.compute_features(fbank_extractor(FBANK)))
    np.testing.assert_allclose(ours, ref, atol=1e-4)


def test_score_pairs_without_labels(fixture, tmp_path, capsys):
    _, model_path = fixture
    wav = write_noise(tmp_path / "a.wav", 0.5)
    pairs = _pairs(tmp_path, [f"{wav}\thello", f"{wav}\tHello!"])
    out = tmp_path / "s.tsv"
    assert score_pairs.main(["--model", str(model_path), "--pairs", str(pairs), "--out", str(out)]) == 0
    assert "AP" not in capsys.readouterr().out
    a, b = [float(r.rsplit("\t", 1)[1]) for r in out.read_text().splitlines()]
    assert a == b  # normalised to the same phones


@pytest.mark.parametrize("bad, message", [
    ("{wav}", "1 tab-separated field"),
    ("{wav}\thello\t1\textra", "4 tab-separated field"),
    ("{missing}\thello", "no such wav file"),
    ("{folder}\thello", "folder is a directory; name one audio file per line"),
    ("{empty}\thello", "no samples"),
    ("{junk}\thello", "cannot read"),
    ("{memo}\thello", "ffmpeg -i memo.m4a -ac 1 -ar 16000 memo.wav)"),
    ("{trunc}\thello", "trunc.wav is truncated: its header promises 16000 bytes (0.50 s)"),
    ("{wav}\thello\t2", "label must be 0 or 1"),
    ("{wav}\t!!!", "nothing pronounceable"),
    ("{wav}\tпривет", "keyword"),
    ("{wav}\t", "empty keyword"),
    ("{tiny}\thello", "s of audio; the model needs at least 0.1 s"),
    ("{short}\thello", "holds 0.010 s of audio"),
    ("{nan}\thello", "NaN or inf"),
    ("{pcmscale}\thello", "pcmscale.wav: float samples reach"),
])
def test_score_pairs_errors_name_the_line(fixture, tmp_path, capsys, bad, message):
    _, model_path = fixture
    wav = write_noise(tmp_path / "a.wav", 0.5)
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    (tmp_path / "junk.wav").write_bytes(b"RIFF not really a wav")
    (tmp_path / "memo.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(64))
    sf.write(tmp_path / "tiny.wav", np.full(40, 0.1, np.float32), 16000)  # 40 samples
    sf.write(tmp_path / "short.wav", write_noise_array(0.01), 16000)      # 10 ms
    sf.write(tmp_path / "nan.wav", np.array([0.1, np.nan] * 4000, np.float32), 16000, subtype="FLOAT")
    # 0.5 s of 16-bit audio cut to 0.1 s: libsndfile would read the 0.1 s without a word
    sf.write(tmp_path / "trunc.wav", write_noise_array(0.5), 16000, subtype="PCM_16")
    (tmp_path / "trunc.wav").write_bytes((tmp_path / "trunc.wav").read_bytes()[:44 + 3200])
    line = bad.format(wav=wav, missing=tmp_path / "nope.wav", empty=tmp_path / "empty.wav",
                      memo=tmp_path / "memo.m4a", trunc=tmp_path / "trunc.wav",
                      junk=tmp_path / "junk.wav", tiny=tmp_path / "tiny.wav",
                      short=tmp_path / "short.wav", nan=tmp_path / "nan.wav",
                      folder=tmp_path / "folder", pcmscale=tmp_path / "pcmscale.wav")
    sf.write(tmp_path / "pcmscale.wav", 32768 * write_noise_array(0.5), 16000, subtype="FLOAT")
    (tmp_path / "folder").mkdir()
    pairs = _pairs(tmp_path, [f"{wav}\tworld", line])  # line 1 is fine, line 2 is not
    out = tmp_path / "out.tsv"
    rc = score_pairs.main(["--model", str(model_path), "--pairs", str(pairs), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 1
    assert "pairs.tsv:2:" in err and message in err
    assert not out.exists()


def write_noise_array(seconds, rate=16000):
    return (0.1 * np.random.default_rng(0).standard_normal(int(seconds * rate))).astype(np.float32)


def test_score_pairs_strips_a_byte_order_mark(fixture, tmp_path):
    _, model_path = fixture
    wav = write_noise(tmp_path / "a.wav", 0.5)
    pairs = tmp_path / "bom.tsv"
    pairs.write_bytes(f"\ufeff{wav}\thello\n".encode("utf-8"))
    out = tmp_path / "o.tsv"
    assert score_pairs.main(["--model", str(model_path), "--pairs", str(pairs), "--out", str(out)]) == 0
    assert out.read_text().startswith(str(wav))


@pytest.mark.parametrize("args, message", [
    (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    (["--batch-size", "-1"], "--batch-size must be >= 1, got -1"),
    (["--out", "{dir}"], "is a directory"),
    (["--out", "{pairs}"], "is the input"),
])
def test_score_pairs_refuses_bad_options_before_any_work(fixture, tmp_path, capsys, args, message):
    _, model_path = fixture
    wav = write_noise(tmp_path / "a.wav", 0.5)
    pairs = _pairs(tmp_path, [f"{wav}\thello"])
    before = pairs.read_text()
    argv = ["--model", str(model_path), "--pairs", str(pairs), "--out", str(tmp_path / "o.tsv")]
    argv += [a.format(dir=tmp_path, pairs=pairs) for a in args]
    assert score_pairs.main(argv) == 1
    assert message in capsys.readouterr().err
    assert pairs.read_text() == before and not (tmp_path / "o.tsv").exists()


def test_score_pairs_refuses_an_out_that_is_one_of_its_wavs(fixture, tmp_path, capsys):
    """--out naming a recording of the pairs (a slip: '--out a.wav') replaced the audio by the
    scores; it is refused at the line that names it, and nothing is written."""
    _, model_path = fixture
    wav = write_noise(tmp_path / "a.wav", 0.5)
    other = write_noise(tmp_path / "b.wav", 0.6, seed=1)
    pairs = _pairs(tmp_path, [f"{other}\thello", f"{wav}\thello"])
    audio = wav.read_bytes()
    assert score_pairs.main(["--model", str(model_path), "--pairs", str(pairs), "--out",
                             str(wav)]) == 1
    assert (f"pairs.tsv:2: --out {wav} is this line's wav; writing it would replace the "
            f"recording" in capsys.readouterr().err)
    assert wav.read_bytes() == audio


def test_score_pairs_rejects_mixed_labels(fixture, tmp_path, capsys):
    _, model_path = fixture
    wav = write_noise(tmp_path / "a.wav", 0.5)
    pairs = _pairs(tmp_path, [f"{wav}\thello\t1", f"{wav}\tworld"])
    rc = score_pairs.main(["--model", str(model_path), "--pairs", str(pairs), "--out",
                           str(tmp_path / "o.tsv")])
    assert rc == 1 and "pairs.tsv:2:" in capsys.readouterr().err


def test_runs_in_one_process_equal_separate_commands_and_embed_once(fixture, tmp_path, capsys,
                                                                     monkeypatch):
    """score --run (stage 8's back-ends in one process): each run's files are byte-identical to
    its own command's, the runs differ from each other, RESULTS.md records for each run the one
    command that scores it alone, and a manifest is embedded once per floor for all runs."""
    import shlex

    from pyadml.score import evaluate

    tmp, _ = fixture
    base = ["--exp-dir", str(tmp / "exp" / "tiny"), "--fbank-dir", str(tmp / "fbank"),
            "--trials-dir", str(tmp / "trials")]
    sets = ["wsj_test:words", "libriphrase_test:pairs"]
    runs = {"plain": [], "floor": ["--floor-db", "30"],
            "words": ["--phrase-score", "words", "libriphrase_test:pairs"]}
    for name, opts in runs.items():  # one command each
        extra = [] if opts and opts[-1].endswith(":pairs") else sets
        assert score_cli.main(base + ["--out-dir", str(tmp_path / "alone" / name), *opts, *extra]) == 0
    calls = []
    real = evaluate.embed_cuts
    monkeypatch.setattr(evaluate, "embed_cuts", lambda model, cuts, **kw: calls.append(kw["floor_db"])
                        or real(model, cuts, **kw))
    md = tmp_path / "RESULTS.md"
    argv = base + ["--results-md", str(md), "--out-dir", str(tmp_path / "one" / "plain"), *sets]
    for name, opts in list(runs.items())[1:]:
        argv += ["--run", shlex.join(["--out-dir", str(tmp_path / "one" / name), "--tag", f"t {name}",
                                      *opts])]
    capsys.readouterr()
    assert score_cli.main(argv) == 0
    assert sorted(calls, key=str) == [30.0, 30.0, None, None]  # two manifests, two floors
    files = sorted(p.relative_to(tmp_path / "alone") for p in (tmp_path / "alone").rglob("*")
                   if p.suffix in (".tsv", ".json", ".md"))
    assert len(files) == 2 * (3 + 2) + (2 + 2)  # scores.tsv per list, metrics.json, results.md
    for rel in files:
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "alone" / rel).read_bytes(), rel
    lp = "libriphrase_test_lp_h/scores.tsv"
    assert len({(tmp_path / "one" / n / lp).read_text() for n in runs}) == 3
    # RESULTS.md: each run's section holds the command that scores it alone.
    text = md.read_text()
    for name in ("floor", "words"):
        section = text[text.index(f"## t {name}"):]
        command = section[section.index("`python -m pyadml.bin.score ") + 1:].split("`")[0]
        tokens = shlex.split(command)[3:]
        assert "--run" not in tokens and tokens.count("--out-dir") == 1
        out = tmp_path / "again" / name
        tokens[tokens.index("--out-dir") + 1] = str(out)
        tokens[tokens.index("--results-md") + 1] = str(tmp_path / "again.md")
        assert score_cli.main(tokens) == 0
        assert (out / lp).read_bytes() == (tmp_path / "alone" / name / lp).read_bytes()


@pytest.mark.parametrize("run, message", [
    ("--floor-db -3", "--run 1: --floor-db must be a positive number"),
    ("--model x.pt", "--model is the command line's"),
    ("--out-dir {plain}", "two runs write to the same --out-dir"),
    ("--jobs 0 --out-dir {other}", "--run 1: --jobs must be >= 1"),
    ("--out-dir 'unclosed", "No closing quotation"),
    ("--nonsense 1", "unrecognized arguments: --nonsense"),
])
def test_a_bad_run_fails_before_any_run_writes(fixture, tmp_path, capsys, run, message):
    tmp, _ = fixture
    plain, other = tmp_path / "plain", tmp_path / "other"
    argv = ["--exp-dir", str(tmp / "exp" / "tiny"), "--fbank-dir", str(tmp / "fbank"),
            "--trials-dir", str(tmp / "trials"), "--out-dir", str(plain), "wsj_test:words",
            "--run", run.format(plain=plain, other=other)]
    with pytest.raises(SystemExit) as e:
        score_cli.main(argv)
    assert e.value.code == 2 and message in capsys.readouterr().err
    assert not plain.exists() and not other.exists()


def test_score_with_phrase_words_fuses_multiword_keywords_only(fixture):
    """--phrase-score words on stage 8's path: single-word trials keep the clip cosine, each
    multi-word trial is 0.5 * clip + 0.5 * its words' best ordered sequence of windows (computed
    here from the model's embeddings of every window, one at a time, and every sequence)."""
    from test_phrase import brute_ordered

    tmp, model_path = fixture
    base = ["--exp-dir", str(tmp / "exp" / "tiny"), "--fbank-dir", str(tmp / "fbank"),
            "--trials-dir", str(tmp / "trials")]
    assert score_cli.main(base + ["--out-dir", str(tmp / "plain"), "libriphrase_test:pairs"]) == 0
    assert score_cli.main(base + ["--out-dir", str(tmp / "words"), "--phrase-score", "words",
                                  "libriphrase_test:pairs"]) == 0
    loaded = load_model(model_path)
    cuts = {c.id: c for c in CutSet.from_file(tmp / "fbank" / "libriphrase_test.jsonl.gz")}

    def unit(x):
        return x / np.linalg.norm(x)

    def ordered(cut_id, words):
        f = cuts[cut_id].load_features()
        spans, embs = [], []
        for length in dict.fromkeys(min(n, f.shape[0]) for n in (30, 50, 70, 90, 110)):
            for start in range(0, f.shape[0] - length + 1, 5):
                x = torch.from_numpy(mean_normalize(f[start:start + length]))[None]
                with torch.inference_mode():
                    e = loaded.model.embed_audio(x, torch.tensor([length])).utt[0].numpy()
                spans.append((start, start + length))
                embs.append(unit(e))
        texts = [unit(embed_texts(loaded.model, [w], loaded.tokenizer)[w]) for w in words]
        return brute_ordered([[float(e @ t) for e in embs] for t in texts], spans)

    for name in ("libriphrase_test_lp_e", "libriphrase_test_lp_h"):
        plain = [r.split("\t") for r in (tmp / "plain" / name / "scores.tsv").read_text().splitlines()]
        words = [r.split("\t") for r in (tmp / "words" / name / "scores.tsv").read_text().splitlines()]
        for p, w in zip(plain, words):
            cut_id, keyword, clip = p[0], p[1], float(p[-1])
            want = clip if len(keyword.split()) == 1 else \
                0.5 * clip + 0.5 * ordered(cut_id, keyword.split())
            assert float(w[-1]) == pytest.approx(want, abs=2e-5)


def test_show_scores_help_and_an_experiment_without_results(tmp_path):
    """steps/show_scores.sh: --help prints its usage, and an experiment stage 8 has not scored is
    named. Before, both ended in cat's own error (`cat: unrecognized option
    '--help/results/results.md'`, `No such file or directory`)."""
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "steps" / "show_scores.sh"
    res = subprocess.run(["bash", str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.startswith("Usage: "), res.stderr
    res = subprocess.run(["bash", str(script), str(tmp_path / "exp")], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 1 and "stage 8 has not scored" in res.stderr, res.stderr
    assert "cat:" not in res.stderr
    (tmp_path / "exp" / "results").mkdir(parents=True)
    (tmp_path / "exp" / "results" / "results.md").write_text("| set | AP |\n")
    res = subprocess.run(["bash", str(script), str(tmp_path / "exp")], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0 and res.stdout == "| set | AP |\n", res.stderr


def test_score_pairs_refuses_an_out_in_a_read_only_directory_before_scoring(fixture, tmp_path,
                                                                         capsys, read_only):
    """`score_pairs --out` into a read-only directory (the shared model's exp/, a read-only
    mount): every pair was scored, then `OSError: [Errno 30] Read-only file system:
    '…/.scores.tsv.<random>.tmp'`. Now it is refused with the other checks of --out, before
    any work."""
    _, model_path = fixture
    wav = write_noise(tmp_path / "a.wav", 0.5)
    pairs = _pairs(tmp_path, [f"{wav}\thello"])
    shared = tmp_path / "shared"
    shared.mkdir()
    read_only(shared)
    out = shared / "scores.tsv"
    assert score_pairs.main(["--model", str(model_path), "--pairs", str(pairs), "--out",
                             str(out)]) == 1
    assert (f"score_pairs: --out {out}: cannot write it: {shared} is on a read-only file system; "
            f"give --out a file elsewhere") in capsys.readouterr().err
