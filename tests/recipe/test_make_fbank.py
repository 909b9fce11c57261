"""steps/make_fbank.sh re-runs: complete sets are skipped, a changed config redoes the set, and
after a kill only the missing jobs run -- from a recipe-like directory, as run.sh calls it."""

import gzip
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lhotse import CutSet, Recording

from pyadml.bin import fbank as fbank_cli
from pyadml.data.features import save_cuts

ROOT = Path(__file__).resolve().parents[2]
SECONDS = [0.31, 0.5, 0.77, 1.0]


@pytest.fixture
def recipe(tmp_path):
    """A recipe dir (steps, utils linked) holding data/cuts.jsonl.gz and conf/fbank.yaml."""
    r = tmp_path / "egs"
    (r / "data").mkdir(parents=True)
    (r / "conf").mkdir()
    (r / "steps").symlink_to(ROOT / "steps")
    (r / "utils").symlink_to(ROOT / "utils")
    (r / "conf" / "fbank.yaml").write_text("num_mel_bins: 40\nframe_shift: 0.01\n")
    rng = np.random.default_rng(0)
    recs = []
    for i, seconds in enumerate(SECONDS):
        path = r / "data" / f"r{i}.wav"
        sf.write(path, 0.1 * rng.standard_normal(int(seconds * 16000)), 16000)
        recs.append(Recording.from_file(path))
    save_cuts(CutSet.from_manifests(recordings=recs), r / "data" / "cuts.jsonl.gz")
    return r


def run_step(recipe, args, check=True, **extra_env):
    # what path.sh sets up
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}:{env['PATH']}"
    env["PYTHONPATH"] = f"{ROOT}:{env['PYTHONPATH']}" if env.get("PYTHONPATH") else str(ROOT)
    env.update(extra_env)
    res = subprocess.run(["bash", *args], cwd=recipe, env=env, capture_output=True, text=True,
                         timeout=300)
    if check:
        assert res.returncode == 0, res.stdout + res.stderr
    return res


def make_fbank(recipe, cuts="data/cuts.jsonl.gz", fbank="data/fbank",
               out="data/fbank/cuts.jsonl.gz", cmd="utils/run_local.sh", check=True):
    return run_step(recipe, ["steps/make_fbank.sh", "--cmd", cmd, "--nj", "2", "--fbank-config",
                             "conf/fbank.yaml", cuts, fbank, out], check)


def check_features(recipe, num_bins=40):
    cuts = CutSet.from_file(recipe / "data/fbank/cuts.jsonl.gz")
    assert [c.id for c in cuts] == [c.id for c in CutSet.from_file(recipe / "data/cuts.jsonl.gz")]
    for cut, seconds in zip(cuts, SECONDS):
        feats = cut.load_features()
        assert feats.shape[1] == num_bins
        assert abs(feats.shape[0] - seconds * 100) <= 1
        assert np.isfinite(feats).all()
    return cuts


def archives(recipe):
    return sorted(p.name for p in (recipe / "data/fbank").glob("*.lca"))


# $cmd that runs the first job it is given, then fails as if killed
DIE_AFTER_FIRST = ('#!/usr/bin/env bash\nr=${1#JOB=}; shift\n'
                   'utils/run_local.sh "JOB=${r%%:*}:${r%%:*}" "$@"\nexit 1\n')


def mtimes(paths):
    return {p.name: p.stat().st_mtime_ns for p in paths}


def test_second_run_skips_without_rewriting(recipe):
    res = make_fbank(recipe)
    assert "computing part(s) 1 2 of 2" in res.stdout
    cuts = check_features(recipe)
    # every feature points at an archive in place, none at a staged (temporary) one
    assert {Path(c.features.storage_path).name for c in cuts} == set(archives(recipe))
    assert len(archives(recipe)) == 2 and not any(".tmp" in a for a in archives(recipe))
    fbank = recipe / "data/fbank"
    files = [fbank / "cuts.jsonl.gz", fbank / "cuts.jsonl.gz.sig",
             *fbank.glob("*.lca"), *fbank.glob("log/*.log")]
    before = mtimes(files)
    res = make_fbank(recipe)
    assert "cuts: complete, skipping" in res.stdout
    assert mtimes(files) == before


def test_changed_config_redoes_the_set(recipe):
    make_fbank(recipe)
    old = archives(recipe)
    (recipe / "conf/fbank.yaml").write_text("num_mel_bins: 23\nframe_shift: 0.01\n")
    res = make_fbank(recipe)
    assert "skipping" not in res.stdout
    assert "computing part(s) 1 2 of 2" in res.stdout
    check_features(recipe, num_bins=23)
    new = archives(recipe)
    assert len(new) == 2 and not set(new) & set(old)  # old archives: replaced, then deleted
    assert "skipping" in make_fbank(recipe).stdout


def test_a_copied_recipe_leaves_the_originals_archives_alone(recipe, tmp_path):
    """cp -r of a recipe: its manifest points at the original's archives (absolute paths);
    redoing the set in the copy must not delete them from under the original."""
    import shutil

    make_fbank(recipe)
    copy = tmp_path / "egs_copy"
    shutil.copytree(recipe, copy, symlinks=True)
    (copy / "conf/fbank.yaml").write_text("num_mel_bins: 23\nframe_shift: 0.01\n")
    make_fbank(copy)
    check_features(copy, num_bins=23)
    check_features(recipe)  # the original's manifest still loads in full
    assert len(archives(recipe)) == 2


def test_after_a_kill_only_the_missing_job_runs(recipe):
    make_fbank(recipe)
    fbank = recipe / "data/fbank"
    # As if the run had been killed while job 1 ran: no part 1, no merged output yet.
    for p in (fbank / "split_cuts/feats.1.jsonl.gz", fbank / "cuts.jsonl.gz",
              fbank / "cuts.jsonl.gz.sig"):
        p.unlink()
    log1, log2 = fbank / "log/fbank_cuts.1.log", fbank / "log/fbank_cuts.2.log"
    log1.write_text("old\n")
    before2 = log2.stat().st_mtime_ns
    res = make_fbank(recipe)
    assert "computing part(s) 1 of 2" in res.stdout
    assert "real time" in log1.read_text()
    assert log2.stat().st_mtime_ns == before2  # job 2 did not run again
    check_features(recipe)
    assert "skipping" in make_fbank(recipe).stdout


def test_a_kill_during_a_rerun_leaves_the_old_output_intact(recipe):
    """A rerun with a new config dies after job 1: the old manifest still loads in full, and the
    next run computes only job 2."""
    make_fbank(recipe)
    old = check_features(recipe)
    old_bytes = {a: (recipe / "data/fbank" / a).read_bytes() for a in archives(recipe)}
    (recipe / "die_after_first.sh").write_text(DIE_AFTER_FIRST)
    (recipe / "conf/fbank.yaml").write_text("num_mel_bins: 23\nframe_shift: 0.01\n")
    res = make_fbank(recipe, cmd="bash die_after_first.sh", check=False)
    assert res.returncode != 0
    assert not (recipe / "data/fbank/cuts.jsonl.gz.sig").exists()
    # the old output and the archives it points to are untouched
    assert check_features(recipe).to_eager()[0].features == old[0].features
    for a, data in old_bytes.items():
        assert (recipe / "data/fbank" / a).read_bytes() == data
    assert (recipe / "data/fbank/split_cuts/feats.1.jsonl.gz").exists()
    assert not (recipe / "data/fbank/split_cuts/feats.2.jsonl.gz").exists()

    res = make_fbank(recipe)
    assert "computing part(s) 2 of 2" in res.stdout
    check_features(recipe, num_bins=23)
    assert not set(archives(recipe)) & set(old_bytes)


@pytest.mark.slow
def test_a_kill_mid_stage_reruns_to_complete_readable_output(recipe):
    """SIGKILL of the whole step while its jobs write (a real kill, not a deleted file), at
    several points; each rerun completes, and every feature matrix loads."""
    import signal
    import time

    make_fbank(recipe)
    first = check_features(recipe)
    (recipe / "conf" / "fbank.yaml").write_text("num_mel_bins: 30\nframe_shift: 0.01\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}:{env['PATH']}"
    env["PYTHONPATH"] = str(ROOT)
    cmd = ["bash", "steps/make_fbank.sh", "--cmd", "utils/run_local.sh", "--nj", "2",
           "--fbank-config", "conf/fbank.yaml", "data/cuts.jsonl.gz", "data/fbank",
           "data/fbank/cuts.jsonl.gz"]
    for delay in (0.5, 1.5, 2.5):
        proc = subprocess.Popen(cmd, cwd=recipe, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(delay)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        # Killed or not, what the output manifest points to loads: the old set or the new one.
        cuts = CutSet.from_file(recipe / "data/fbank/cuts.jsonl.gz")
        assert all(np.isfinite(c.load_features()).all() for c in cuts)
        assert {c.load_features().shape[1] for c in cuts} in ({40}, {30})
    make_fbank(recipe)
    check_features(recipe, num_bins=30)
    assert len(first) == len(SECONDS)


# ------------------------------------------------------------------ several sets, one array
# Subsets of the fixture's recordings: a and b split into two parts with --nj 2, c (one cut)
# into one.
SETS = {"a": [0, 1, 2], "b": [3, 1], "c": [2]}


@pytest.fixture
def sets(recipe):
    """The recipe with data/sets/<set>.jsonl.gz for each of SETS."""
    cuts = list(CutSet.from_file(recipe / "data/cuts.jsonl.gz"))
    for name, idx in SETS.items():
        save_cuts(CutSet.from_cuts(cuts[i] for i in idx), recipe / "data/sets" / f"{name}.jsonl.gz")
    return recipe


def make_fbank_sets(recipe, *names, cmd="utils/run_local.sh", check=True, **env):
    return run_step(recipe, ["steps/make_fbank_sets.sh", "--cmd", cmd, "--nj", "2",
                             "--fbank-config", "conf/fbank.yaml", "data/sets", "data/fbank",
                             *names], check, **env)


def features(manifest):
    return {c.id: c.load_features() for c in CutSet.from_file(manifest)}


def ids(recipe, name):
    return [c.id for c in CutSet.from_file(recipe / f"data/sets/{name}.jsonl.gz")]


def text(manifest):
    return gzip.open(manifest, "rt").read()


def job_logs(recipe):
    return sorted(p.name for p in (recipe / "data/fbank/log").glob("*.log"))


def test_sets_in_one_array_get_the_features_of_each_set_alone(sets):
    progress = sets / "progress.txt"
    res = make_fbank_sets(sets, "a", "b", "c", PYADML_PROGRESS=str(progress))
    assert "a: computing part(s) 1 2 of 2" in res.stdout
    assert "c: computing part(s) 1 of 1" in res.stdout
    # one process per job for all three sets, not one per set and job
    assert job_logs(sets) == ["fbank.1.log", "fbank.2.log"]
    log1, log2 = ((sets / "data/fbank/log" / n).read_text() for n in job_logs(sets))
    assert log1.count("torch and lhotse loaded") == log2.count("torch and lhotse loaded") == 1
    for part in ("a part 1/2", "b part 1/2", "c part 1/1"):
        assert f"fbank {part}: " in log1 and "real time" in log1
    assert "fbank c: no part 2 (split into 1)" in log2 and "fbank c part" not in log2
    assert "   fbank 3 sets: 2/2 jobs done | elapsed " in progress.read_text()
    # each set alone: the same archives, byte for byte (the same names: the tag is the same), and
    # the same manifest but for the directory its archives are in
    fbank, other = (sets / "data/fbank").resolve(), (sets / "data/alone").resolve()
    for name in SETS:
        make_fbank(sets, f"data/sets/{name}.jsonl.gz", "data/alone", f"data/alone/{name}.jsonl.gz")
        together, alone = features(fbank / f"{name}.jsonl.gz"), features(other / f"{name}.jsonl.gz")
        assert list(together) == list(alone) == ids(sets, name)
        assert all(np.array_equal(together[k], alone[k]) for k in together)
        assert text(fbank / f"{name}.jsonl.gz").replace(str(fbank), "D") \
            == text(other / f"{name}.jsonl.gz").replace(str(other), "D")
    alone = sorted(other.glob("*.lca"))
    assert len(alone) == 5 and [p.name for p in alone] == archives(sets)
    assert all(p.read_bytes() == (fbank / p.name).read_bytes() for p in alone)
    assert "skipping" in make_fbank_sets(sets, "a", "b", "c").stdout


def test_a_kill_after_one_job_leaves_every_set_resumable(sets):
    (sets / "die_after_first.sh").write_text(DIE_AFTER_FIRST)
    res = make_fbank_sets(sets, "a", "b", cmd="bash die_after_first.sh", check=False)
    assert res.returncode != 0
    fbank = sets / "data/fbank"
    for name in ("a", "b"):
        assert (fbank / f"split_{name}/feats.1.jsonl.gz").exists()
        assert not (fbank / f"split_{name}/feats.2.jsonl.gz").exists()
        assert not (fbank / f"{name}.jsonl.gz").exists()
        assert f"{name}: part(s) 2 of 2 not computed; not merged" in res.stderr
    before1 = (fbank / "log/fbank.1.log").stat().st_mtime_ns
    res = make_fbank_sets(sets, "a", "b")
    for name in ("a", "b"):
        assert f"{name}: computing part(s) 2 of 2" in res.stdout
    assert (fbank / "log/fbank.1.log").stat().st_mtime_ns == before1  # job 1 did not run again
    log2 = (fbank / "log/fbank.2.log").read_text()
    assert "fbank a part 2/2: " in log2 and "fbank b part 2/2: " in log2
    for name in ("a", "b"):
        assert list(features(fbank / f"{name}.jsonl.gz")) == ids(sets, name)


def test_a_complete_set_is_skipped_while_another_is_computed(sets):
    make_fbank_sets(sets, "a")
    fbank = sets / "data/fbank"
    files = [fbank / "a.jsonl.gz", fbank / "a.jsonl.gz.sig", *fbank.glob("a_feats.*.lca"),
             *(fbank / "split_a").iterdir()]
    before = mtimes(files)
    res = make_fbank_sets(sets, "a", "b")
    assert "a: complete, skipping" in res.stdout and "b: computing part(s) 1 2 of 2" in res.stdout
    assert mtimes(files) == before
    for log in job_logs(sets):  # the jobs were not given set a
        header = (fbank / "log" / log).read_text().splitlines()[0]
        assert "--set b 2 " in header and "--set a" not in header
    assert list(features(fbank / "b.jsonl.gz")) == ids(sets, "b")


def test_a_failing_set_does_not_stop_the_others(sets):
    (sets / "data/sets/bad.jsonl.gz").write_bytes(
        gzip.compress(b'{"id": "x", "type": "MonoCut"}\n'))
    res = make_fbank_sets(sets, "a", "bad", check=False)
    assert res.returncode != 0
    assert "bad: part(s) 1 of 1 not computed; not merged" in res.stderr
    assert "fbank bad part 1/1: failed" in (sets / "data/fbank/log/fbank.1.log").read_text()
    # a's parts were written and merged all the same; the rerun only fails bad again
    assert list(features(sets / "data/fbank/a.jsonl.gz"))
    res = make_fbank_sets(sets, "a", "bad", check=False)
    assert res.returncode != 0 and "a: complete, skipping" in res.stdout


def test_a_failed_job_s_reason_is_within_the_lines_run_stage_shows(sets):
    """run_stage shows the last 20 lines of the stage's log. Before, the step's speeds (a line
    per set and job) came after $cmd's report and pushed it out: the console said "fbank
    failed" and nothing about which job or why. Now the report and the failed job's last lines
    are there, the speeds left out after a failure."""
    (sets / "data/sets/bad.jsonl.gz").write_bytes(
        gzip.compress(b'{"id": "x", "type": "MonoCut"}\n'))
    res = make_fbank_sets(sets, "a", "b", "bad", check=False)
    assert res.returncode != 0
    shown = "\n".join((res.stdout + res.stderr).splitlines()[-20:])
    assert "run_local.sh: 1 / 2 failed, log is in data/fbank/log/fbank.1.log" in shown
    assert "run_local.sh: last lines of data/fbank/log/fbank.1.log:" in shown
    assert "fbank job 1: failed: fbank bad part 1/1" in shown
    assert "real time" not in res.stdout  # the speeds (the job's last lines may hold its own)


def test_sets_bad_input_is_named_before_anything_is_written(sets):
    res = make_fbank_sets(sets, "a", "nope", check=False)
    assert res.returncode != 0
    assert "set nope: expected its cuts in data/sets/nope.jsonl.gz" in res.stderr
    res = make_fbank_sets(sets, "a", "a", check=False)
    assert res.returncode != 0 and "set a given twice" in res.stderr
    assert not (sets / "data/fbank").exists()


def test_compute_many_names_a_bad_set_argument(capsys):
    with pytest.raises(SystemExit):
        fbank_cli.main(["compute-many", "--job", "1", "--set", "a", "two", "c", "s", "o"])
    assert "--set a: PARTS must be a positive integer, got 'two'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        fbank_cli.main(["compute-many", "--job", "1", "--set", "a", "1", "c", "s", "o",
                        "--set", "a", "1", "c2", "s2", "o2"])
    assert "--set a given 2 times" in capsys.readouterr().err


def test_compute_many_names_a_missing_part(tmp_path, capsys):
    """A part that the split should hold but does not: that part fails, naming the file."""
    args = ["compute-many", "--job", "1", "--set", "a", "2", str(tmp_path / "cuts.1.jsonl.gz"),
            str(tmp_path / "a_feats.1"), str(tmp_path / "feats.1.jsonl.gz")]
    assert fbank_cli.main(args) == 1
    err = capsys.readouterr().err
    assert f"fbank a part 1/2: expected the part's cuts in {tmp_path / 'cuts.1.jsonl.gz'}" in err
    assert not list(tmp_path.iterdir())


def test_a_part_that_a_full_disk_stops_says_so_in_the_job_s_last_line(recipe, disk_full, capsys):
    """Stage 4 on a full disk: the console (run_stage's and $cmd's last lines of the log) said
    `fbank job 1: failed: fbank king_asr_066_train_aug part 1/2` and no more, the cause (`OSError:
    [Errno 28] No space left on device`, with no file) lay in a traceback in the job's log. Now
    the job's last line names the archive, the device and its free space, and nothing of the
    part is left: neither an archive (staged or final) nor its part manifest."""
    fbank = recipe / "data" / "fbank"
    fbank.mkdir()
    disk_full(fbank, after=2000)
    args = ["compute-many", "--config", str(recipe / "conf" / "fbank.yaml"), "--job", "1",
            "--set", "a", "1", str(recipe / "data" / "cuts.jsonl.gz"), str(fbank / "a_feats.1"),
            str(fbank / "feats.1.jsonl.gz")]
    assert fbank_cli.main(args) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"fbank job 1: failed: fbank a part 1/1 ({fbank / 'a_feats.1.lca'}: "
                           f"cannot write it: no space left on the device of {fbank} ("), last
    assert list(fbank.iterdir()) == []
