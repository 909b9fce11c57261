import gzip
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lhotse import CutSet, Recording

from pyadml.data.features import compute_fbank, fbank_extractor, merge_cuts, save_cuts, split_cuts

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cuts_path(tmp_path):
    rng = np.random.default_rng(0)
    recs = []
    for i, seconds in enumerate([0.31, 0.5, 0.77, 1.0, 1.234]):
        path = tmp_path / f"r{i}.wav"
        sf.write(path, 0.1 * rng.standard_normal(int(seconds * 16000)), 16000)
        recs.append(Recording.from_file(path))
    cuts = CutSet.from_manifests(recordings=recs)
    save_cuts(cuts, tmp_path / "cuts.jsonl.gz")
    return tmp_path / "cuts.jsonl.gz"


def test_fbank_shapes_match_durations(cuts_path, tmp_path):
    out = compute_fbank(cuts_path, tmp_path / "feats", tmp_path / "out.jsonl.gz",
                        ROOT / "egs/wsj_librikws/conf/fbank.yaml")
    for cut in CutSet.from_file(tmp_path / "out.jsonl.gz"):
        feats = cut.load_features()
        assert feats.shape[1] == 40
        assert abs(feats.shape[0] - cut.duration * 100) <= 1  # 10 ms shift
        assert np.isfinite(feats).all()
    assert len(out) == 5


def test_cuts_whose_audio_fails_to_load_are_an_error_not_dropped(cuts_path, tmp_path):
    """lhotse skips a cut whose audio does not load (with a warning); a set must not lose cuts
    silently, so the part fails naming them, and writes neither manifest nor archive."""
    (tmp_path / "r1.wav").unlink()
    (tmp_path / "r3.wav").write_bytes(b"not audio")
    with pytest.raises(RuntimeError, match=r"cuts\.jsonl\.gz: 2 of 5 cuts got no features.*r1.*r3") as e:
        compute_fbank(cuts_path, tmp_path / "feats", tmp_path / "out.jsonl.gz")
    # the first one's cause is in the message itself (the job log's last lines), with its file
    assert f"; the first: Reading audio from '{tmp_path / 'r1.wav'}' failed" in str(e.value)
    assert not (tmp_path / "out.jsonl.gz").exists()
    assert not list(tmp_path.glob("feats*"))


def test_a_nan_in_an_augmentation_source_is_named_not_a_lilcom_crash(tmp_path):
    """A noise file (a float wav) with NaN samples, mixed into a copy by stage 3: its fbank
    was NaN, and stage 4 stopped with lilcom's 'cannot convert float NaN to integer', naming
    no cut or file. Now the cut and the file are named, and nothing is written."""
    from pyadml.data.augment import DEFAULT_CONFIG, augment_cuts
    from lhotse import RecordingSet

    rng = np.random.default_rng(0)
    sf.write(tmp_path / "word.wav", 0.1 * rng.standard_normal(16000), 16000)
    noise = (0.05 * rng.standard_normal(3 * 16000)).astype(np.float32)
    noise[::1000] = np.nan
    sf.write(tmp_path / "noise.wav", noise, 16000, subtype="FLOAT")
    cuts = CutSet.from_manifests(recordings=[Recording.from_file(tmp_path / "word.wav")])
    weights = {k: 0.0 for k in DEFAULT_CONFIG["weights"]}
    weights["noise"] = 1.0
    aug = augment_cuts(cuts, rirs=None, music=None, babble=None, cfg={"weights": weights}, seed=1,
                       noise=RecordingSet.from_recordings([Recording.from_file(tmp_path / "noise.wav")]),
                       copies=1, keep_clean=True)
    save_cuts(aug, tmp_path / "aug.jsonl.gz")
    copy = [c.id for c in aug][1]
    with pytest.raises(RuntimeError) as e:
        compute_fbank(tmp_path / "aug.jsonl.gz", tmp_path / "feats", tmp_path / "out.jsonl.gz")
    assert str(e.value).startswith(f"{tmp_path / 'aug.jsonl.gz'}: cut {copy}: ")
    assert "of its fbank values are NaN or infinite" in str(e.value)
    assert f"{tmp_path / 'noise.wav'} holds 48 NaN or infinite samples: replace or remove it" in str(e.value)
    assert str(tmp_path / "word.wav") not in str(e.value)
    assert not (tmp_path / "out.jsonl.gz").exists()
    assert not list(tmp_path.glob("feats*"))


def test_unknown_fbank_option_is_an_error():
    with pytest.raises(ValueError, match="num_mel_binz"):
        fbank_extractor({"num_mel_binz": 40})


def test_split_and_merge_restore_the_manifest(cuts_path, tmp_path):
    parts = split_cuts(cuts_path, 3, tmp_path / "split")
    assert [p.name for p in parts] == ["cuts.1.jsonl.gz", "cuts.2.jsonl.gz", "cuts.3.jsonl.gz"]
    assert sorted(len(CutSet.from_file(p)) for p in parts) == [1, 2, 2]
    assert merge_cuts(parts, tmp_path / "merged.jsonl.gz") == 5
    read = lambda p: gzip.open(p, "rt").read()  # noqa: E731
    assert read(tmp_path / "merged.jsonl.gz") == read(cuts_path)
    assert len(split_cuts(cuts_path, 50, tmp_path / "many")) == 5  # never an empty part
    with pytest.raises(ValueError, match="appears twice"):
        merge_cuts([parts[0], parts[0]], tmp_path / "dup.jsonl.gz")


def test_interleaved_split_and_merge_restore_the_manifest(cuts_path, tmp_path):
    """Cut k in part k mod N; merging one cut of each part in turn gives the manifest back."""
    parts = split_cuts(cuts_path, 2, tmp_path / "split", interleave=True)
    ids = [json.loads(x)["id"] for x in gzip.open(cuts_path, "rt").read().splitlines()]
    got = [[c.id for c in CutSet.from_file(p)] for p in parts]
    assert got == [ids[0::2], ids[1::2]] and len(ids) == 5
    assert merge_cuts(parts, tmp_path / "merged.jsonl.gz", interleave=True) == 5
    read = lambda p: gzip.open(p, "rt").read()  # noqa: E731
    assert read(tmp_path / "merged.jsonl.gz") == read(cuts_path)
    # plain concatenation of the same parts is another order; parts of 2 and 3 cuts are not
    # an interleaved split of 5 (the first part holds the extra cut)
    merge_cuts(parts, tmp_path / "concat.jsonl.gz")
    assert read(tmp_path / "concat.jsonl.gz") != read(cuts_path)
    with pytest.raises(ValueError, match="not an interleaved split"):
        merge_cuts(parts[::-1], tmp_path / "bad.jsonl.gz", interleave=True)


def test_an_interleaved_split_keeps_a_recordings_cuts_in_one_part(tmp_path):
    """Runs of consecutive cuts of one recording go to the parts in turn (a recording read
    through a command is decoded by one job), recording A coming back after B included; the
    runs file puts them back in order, and a wrong one is refused."""
    recs = {}
    for name, seconds in [("A", 2.0), ("B", 1.5), ("C", 1.0)]:
        sf.write(tmp_path / f"{name}.wav", np.zeros(int(seconds * 16000)), 16000)
        recs[name] = Recording.from_file(tmp_path / f"{name}.wav", recording_id=name)
    layout = ["A", "A", "A", "B", "B", "A", "C", "C", "C", "C", "B"]
    cuts = CutSet.from_cuts(recs[r].to_cut().truncate(offset=0.1 * i, duration=0.1)
                            .with_id(f"{r}-{i}") for i, r in enumerate(layout))
    save_cuts(cuts, tmp_path / "cuts.jsonl.gz")
    parts = split_cuts(tmp_path / "cuts.jsonl.gz", 2, tmp_path / "split", interleave=True)
    got = [[c.id for c in CutSet.from_file(p)] for p in parts]
    # runs: AAA BB A CCCC B -> part 1 takes runs 1, 3, 5; part 2 runs 2, 4
    assert got == [["A-0", "A-1", "A-2", "A-5", "B-10"], ["B-3", "B-4", "C-6", "C-7", "C-8", "C-9"]]
    runs = tmp_path / "split" / "runs.txt.gz"
    assert gzip.open(runs, "rt").read().split("\n")[:-1] == ["1 3", "2 2", "1 1", "2 4", "1 1"]
    read = lambda p: gzip.open(p, "rt").read()  # noqa: E731
    assert merge_cuts(parts, tmp_path / "merged.jsonl.gz", interleave=True, runs=runs) == 11
    assert read(tmp_path / "merged.jsonl.gz") == read(tmp_path / "cuts.jsonl.gz")
    with pytest.raises(ValueError, match=r"runs\.txt\.gz:4: 4 cuts of part 2 do not match parts of \[6, 5\]"):
        merge_cuts(parts[::-1], tmp_path / "bad.jsonl.gz", interleave=True, runs=runs)
    assert len(split_cuts(tmp_path / "cuts.jsonl.gz", 9, tmp_path / "many", interleave=True)) == 5


def test_make_fbank_sh_runs_jobs_through_cmd(cuts_path, tmp_path):
    env = dict(os.environ, PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}")
    res = subprocess.run(
        ["bash", "steps/make_fbank.sh", "--nj", "2", "--cmd", "utils/run_local.sh --max-jobs-run 2",
         str(cuts_path), str(tmp_path / "fbank"), str(tmp_path / "feats.jsonl.gz")],
        cwd=ROOT, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    logs = sorted((tmp_path / "fbank" / "log").glob("fbank_cuts.*.log"))
    assert len(logs) == 2 and all("# Ended (code 0)" in p.read_text() for p in logs)
    cuts = CutSet.from_file(tmp_path / "feats.jsonl.gz")
    assert [c.id for c in cuts] == [c.id for c in CutSet.from_file(cuts_path)]
    assert all(c.has_features for c in cuts)
    # a failing job fails the step and names its log
    (tmp_path / "bad.jsonl.gz").write_bytes(gzip.compress(b'{"id": "x", "type": "MonoCut"}\n'))
    res = subprocess.run(
        ["bash", "steps/make_fbank.sh", "--nj", "1", str(tmp_path / "bad.jsonl.gz"),
         str(tmp_path / "fbank2"), str(tmp_path / "out2.jsonl.gz")],
        cwd=ROOT, env=env, capture_output=True, text=True)
    assert res.returncode != 0 and "fbank_bad.1.log" in res.stderr
    assert not (tmp_path / "out2.jsonl.gz").exists()


def test_word_cuts_of_a_piped_recording_decode_it_once(tmp_path):
    """A recording read through a command (sph2pipe, or sph2wav for the LDC's Shorten SPHERE)
    is decoded whole for each word cut of it unless lhotse's command cache is on: one run per
    recording, and the features of the same audio as a plain file."""
    import sys

    from lhotse import RecordingSet, SupervisionSegment, SupervisionSet
    from lhotse.audio import AudioSource
    from shorten_writer import encode, sphere

    x = np.round(3000 * np.sin(np.arange(32000) / 7.0)).astype(np.int64)
    sph = tmp_path / "a.wv1"
    sph.write_bytes(sphere(encode(x), len(x)))
    wav = tmp_path / "a.wav"
    sf.write(wav, x.astype(np.int16), 16000, subtype="PCM_16")
    runs = tmp_path / "runs.log"
    cmd = f"echo run >> {runs}; {sys.executable} -m pyadml.bin.sph2wav {sph}"
    piped = Recording(id="a", sources=[AudioSource(type="command", channels=[0], source=cmd)],
                      sampling_rate=16000, num_samples=len(x), duration=2.0)
    words = [SupervisionSegment(id=f"a-{i}", recording_id="a", start=0.4 * i, duration=0.35)
             for i in range(4)]
    feats = {}
    for name, rec in [("piped", piped), ("file", Recording.from_file(wav, recording_id="a"))]:
        cuts = CutSet.from_manifests(recordings=RecordingSet.from_recordings([rec]),
                                     supervisions=SupervisionSet.from_segments(words))
        cuts = cuts.trim_to_supervisions()
        save_cuts(cuts, tmp_path / f"{name}.jsonl.gz")
        out = compute_fbank(tmp_path / f"{name}.jsonl.gz", tmp_path / f"{name}_feats",
                            tmp_path / f"{name}_out.jsonl.gz")
        feats[name] = {c.id: c.load_features() for c in out}
    assert runs.read_text().split() == ["run"]
    assert feats["piped"].keys() == feats["file"].keys() and len(feats["file"]) == 4
    for k in feats["file"]:
        np.testing.assert_array_equal(feats["piped"][k], feats["file"][k])
