"""utils/stage.sh (run_stage), exercised through real bash."""

import gzip
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PARSE_OPTIONS = REPO / "utils" / "parse_options.sh"
STAGE = REPO / "utils" / "stage.sh"

# Stages 0..2 each append their number to out.txt; stage 1 fails when the
# file `fail1` exists, after writing a line to its log.
RUN_SH = f"""#!/usr/bin/env bash
set -euo pipefail
stage=0
stop_stage=100
done_dir=data/.done
force=false
. {PARSE_OPTIONS} || exit 1
. {STAGE}

step() {{
  echo "running step $1"
  echo "markers-seen:$(ls -A data/.done 2>/dev/null | tr '\\n' ' ')"
  if [[ $1 == 1 && -e fail1 ]]; then
    echo "boom"
    return 3
  fi
  echo "$1" >> out.txt
}}

run_stage 0 "stage zero" exp/log/stage0.log step 0
run_stage 1 "stage one" exp/log/stage1.log step 1
run_stage 2 "stage two" exp/log/stage2.log step 2
echo "all-finished"
"""


@pytest.fixture
def recipe(tmp_path):
    (tmp_path / "run.sh").write_text(RUN_SH)

    def _run(*args):
        return subprocess.run(
            ["bash", "run.sh", *args],
            capture_output=True, text=True, cwd=tmp_path, timeout=60,
        )

    return _run


def ran(tmp_path):
    out = tmp_path / "out.txt"
    return out.read_text().split() if out.exists() else []


def markers(tmp_path):
    d = tmp_path / "data" / ".done"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_bash_syntax():
    subprocess.run(["bash", "-n", str(STAGE)], check=True)


def test_default_runs_all_stages(recipe, tmp_path):
    p = recipe()
    assert p.returncode == 0, p.stderr
    assert ran(tmp_path) == ["0", "1", "2"]
    assert markers(tmp_path) == ["stage_0.done", "stage_1.done", "stage_2.done"]
    assert "== Stage 0: stage zero" in p.stdout
    assert "exp/log/stage2.log" in p.stdout
    assert "all-finished" in p.stdout
    # Command output goes to the log, not the terminal.
    assert "running step 1" not in p.stdout
    assert "running step 1" in (tmp_path / "exp/log/stage1.log").read_text()
    marker = (tmp_path / "data/.done/stage_1.done").read_text()
    assert "step 1" in marker


def test_stage_range(recipe, tmp_path):
    p = recipe("--stage", "1", "--stop-stage", "1")
    assert p.returncode == 0, p.stderr
    assert ran(tmp_path) == ["1"]
    assert markers(tmp_path) == ["stage_1.done"]
    assert "Stage 0" not in p.stdout and "Stage 2" not in p.stdout


def test_rerun_skips_completed_stages(recipe, tmp_path):
    assert recipe("--stop-stage", "1").returncode == 0
    assert ran(tmp_path) == ["0", "1"]
    p = recipe()
    assert p.returncode == 0, p.stderr
    assert ran(tmp_path) == ["0", "1", "2"]  # 0 and 1 not executed again
    assert "already done (data/.done/stage_0.done); skipping" in p.stdout
    assert "already done (data/.done/stage_1.done); skipping" in p.stdout
    log0 = (tmp_path / "exp/log/stage0.log").read_text()
    assert log0.count("running step 0") == 1


def test_force_ignores_markers(recipe, tmp_path):
    assert recipe().returncode == 0
    p = recipe("--force", "true", "--stage", "2")
    assert p.returncode == 0, p.stderr
    assert ran(tmp_path) == ["0", "1", "2", "2"]


def test_failure_stops_script(recipe, tmp_path):
    (tmp_path / "fail1").touch()
    p = recipe()
    assert p.returncode != 0
    assert ran(tmp_path) == ["0"]  # stage 2 never ran
    assert markers(tmp_path) == ["stage_0.done"]  # no marker for the failure
    assert "Stage 1 (stage one) failed with status 3" in p.stderr
    assert "exp/log/stage1.log" in p.stderr
    assert "boom" in p.stderr  # tail of the log is shown
    assert "all-finished" not in p.stdout
    assert "Stage 2" not in p.stdout

    # After fixing the cause, a re-run resumes at the failed stage.
    (tmp_path / "fail1").unlink()
    p = recipe()
    assert p.returncode == 0, p.stderr
    assert ran(tmp_path) == ["0", "1", "2"]


def test_marker_written_only_after_success(recipe, tmp_path):
    """While a stage's command runs, its marker (or a temp file) must not exist."""
    assert recipe().returncode == 0
    for n in range(3):
        log = (tmp_path / f"exp/log/stage{n}.log").read_text()
        seen = log.split("markers-seen:")[1].splitlines()[0].split()
        assert seen == [f"stage_{k}.done" for k in range(n)]
    # No temporary marker files are left behind after success either.
    assert markers(tmp_path) == ["stage_0.done", "stage_1.done", "stage_2.done"]


def test_set_e_inside_function_stage(tmp_path):
    """A failing command in the middle of a stage function fails the stage."""
    script = tmp_path / "r.sh"
    script.write_text(f"""set -euo pipefail
stage=0; stop_stage=100; done_dir=done
. {STAGE}
f() {{ false; echo should-not-run >> out.txt; }}
run_stage 0 "func" log/0.log f
echo finished
""")
    p = subprocess.run(["bash", str(script)], capture_output=True, text=True,
                       cwd=tmp_path, timeout=30)
    assert p.returncode != 0
    assert not (tmp_path / "out.txt").exists()
    assert not (tmp_path / "done" / "stage_0.done").exists()
    assert "finished" not in p.stdout


@pytest.mark.parametrize("bad", ["x", "1.5"])
def test_non_integer_stage_rejected(recipe, tmp_path, bad):
    p = recipe("--stage", bad)
    assert p.returncode != 0
    assert "integer" in p.stderr
    assert ran(tmp_path) == []


# --- keys: a marker records what produced it; a change reruns the stage -----

# Stage 0 takes a yaml config (layered on a base) as --config=FILE, stage 1 a
# file through $stage_inputs, stage 2 an option that changes its command line,
# and stage 3 writes the file it names (an output, hashed as the stage left it).
KEYED_SH = f"""#!/usr/bin/env bash
set -euo pipefail
stage=0
stop_stage=100
done_dir=data/.done
force=false
arg2=x
. {PARSE_OPTIONS} || exit 1
. {STAGE}

step() {{ echo "$1" >> out.txt; }}
write_out() {{ echo "$1" >> out.txt; mkdir -p res; echo "$RANDOM$RANDOM" > "${{2#--out=}}"; }}

run_stage 0 "train" exp/log/0.log step 0 --config=conf/train.yaml
stage_inputs="conf/extra.txt conf/later.txt" run_stage 1 "fbank" exp/log/1.log step 1
run_stage 2 "plain" exp/log/2.log step 2 "$arg2"
run_stage 3 "export" exp/log/3.log write_out 3 --out=res/model.txt
echo "all-finished"
"""


@pytest.fixture
def keyed(tmp_path):
    (tmp_path / "run.sh").write_text(KEYED_SH)
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "base.yaml").write_text("lr: 0.1\n")
    (conf / "train.yaml").write_text("base: base.yaml  # layered\nepochs: 3\n")
    (conf / "extra.txt").write_text("one\n")

    def _run(*args):
        p = subprocess.run(["bash", "run.sh", *args], capture_output=True, text=True,
                           cwd=tmp_path, timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "all-finished" in p.stdout
        return p

    _run()
    assert ran(tmp_path) == ["0", "1", "2", "3"]
    return _run


def skipped(p):
    return [n for n in range(4) if f"== Stage {n}: " in p.stdout
            and "already done" in p.stdout.split(f"== Stage {n}: ")[1].splitlines()[0]]


def test_marker_records_key_and_inputs(keyed, tmp_path):
    import hashlib

    marker = (tmp_path / "data/.done/stage_0.done").read_text()
    lines = marker.splitlines()
    assert any(line.startswith("key: ") and len(line) == len("key: ") + 64 for line in lines)
    for name in ("conf/train.yaml", "conf/base.yaml"):
        sha = hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
        assert f"input: {sha} {name}" in lines
    assert "command: step 0 --config=conf/train.yaml" in lines
    # stage_inputs: only the files that exist are hashed
    marker1 = (tmp_path / "data/.done/stage_1.done").read_text()
    assert "conf/extra.txt" in marker1 and "conf/later.txt" not in marker1


def test_unchanged_inputs_skip(keyed, tmp_path):
    p = keyed()
    assert ran(tmp_path) == ["0", "1", "2", "3"]
    assert skipped(p) == [0, 1, 2, 3]  # stage 3's own output does not count as a change
    assert "rerunning" not in p.stdout


def test_changed_config_reruns_and_names_it(keyed, tmp_path):
    (tmp_path / "conf/train.yaml").write_text("base: base.yaml\nepochs: 4\n")
    p = keyed()
    # The stage reruns, and so does every stage after it: their inputs came from it.
    assert ran(tmp_path) == ["0", "1", "2", "3", "0", "1", "2", "3"]
    assert "== Stage 0: train: changed since data/.done/stage_0.done; rerunning" in p.stdout
    assert "changed: conf/train.yaml" in p.stdout
    assert "conf/base.yaml" not in p.stdout
    assert "== Stage 1: fbank: changed since data/.done/stage_1.done; rerunning" in p.stdout
    assert "an earlier stage changed: stage 0" in p.stdout
    assert skipped(p) == []
    assert keyed().stdout.count("already done") == 4  # the new markers hold the new keys
    # A run that starts later still sees the earlier stages' markers: nothing reruns.
    assert keyed("--stage", "2").stdout.count("already done") == 2


def test_changed_base_of_a_yaml_reruns(keyed, tmp_path):
    (tmp_path / "conf/base.yaml").write_text("lr: 0.2\n")
    p = keyed()
    assert ran(tmp_path) == ["0", "1", "2", "3"] * 2
    assert "changed: conf/base.yaml" in p.stdout
    # pointing at another base names both the new and the dropped file
    (tmp_path / "conf/base2.yaml").write_text("lr: 0.3\n")
    (tmp_path / "conf/train.yaml").write_text("base: 'base2.yaml'\nepochs: 3\n")
    p = keyed()
    assert ran(tmp_path)[-4:] == ["0", "1", "2", "3"]
    assert "changed: conf/train.yaml" in p.stdout
    assert "added: conf/base2.yaml" in p.stdout
    assert "removed: conf/base.yaml" in p.stdout


def test_changed_command_line_reruns(keyed, tmp_path):
    p = keyed("--arg2", "y")
    assert ran(tmp_path) == ["0", "1", "2", "3", "2", "3"]
    assert "its command line changed" in p.stdout
    assert "was: step 2 x" in p.stdout and "now: step 2 y" in p.stdout
    assert skipped(p) == [0, 1]


def test_stage_inputs_count(keyed, tmp_path):
    (tmp_path / "conf/extra.txt").write_text("two\n")
    p = keyed()
    assert ran(tmp_path) == ["0", "1", "2", "3", "1", "2", "3"]
    assert "changed: conf/extra.txt" in p.stdout
    (tmp_path / "conf/later.txt").write_text("new\n")
    p = keyed()
    assert ran(tmp_path)[-3:] == ["1", "2", "3"] and "added: conf/later.txt" in p.stdout
    (tmp_path / "conf/extra.txt").unlink()
    p = keyed()
    assert ran(tmp_path)[-3:] == ["1", "2", "3"] and "removed: conf/extra.txt" in p.stdout
    assert len(ran(tmp_path)) == 13


def test_old_marker_without_key_reruns(keyed, tmp_path):
    marker = tmp_path / "data/.done/stage_2.done"
    old = [line for line in marker.read_text().splitlines()
           if not line.startswith(("key: ", "input: "))]
    marker.write_text("\n".join(old) + "\n")
    p = keyed()
    assert "== Stage 2: plain: marker has no key; rerunning" in p.stdout
    assert ran(tmp_path) == ["0", "1", "2", "3", "2"]
    assert "key: " in marker.read_text()


def test_force_still_reruns_keyed_stages(keyed, tmp_path):
    keyed("--force", "true", "--stage", "1", "--stop-stage", "1")
    assert ran(tmp_path) == ["0", "1", "2", "3", "1"]


def test_stage_outputs_are_not_hashed(tmp_path):
    (tmp_path / "shared.md").write_text("a\n")
    script = tmp_path / "r.sh"
    script.write_text(f"""set -euo pipefail
stage=0; stop_stage=100; done_dir=done
. {STAGE}
f() {{ echo "$RANDOM" >> shared.md; echo ran >> out.txt; }}
stage_outputs=shared.md run_stage 0 "score" log/0.log f --results-md shared.md
""")
    for _ in range(2):
        p = subprocess.run(["bash", str(script)], capture_output=True, text=True,
                           cwd=tmp_path, timeout=30)
        assert p.returncode == 0, p.stderr
        (tmp_path / "shared.md").write_text("changed by another experiment\n")
    assert (tmp_path / "out.txt").read_text().split() == ["ran"]
    assert "shared.md" not in (tmp_path / "done/stage_0.done").read_text().replace(
        "command: f --results-md shared.md", "")


# --- one run at a time ----------------------------------------------------------

def test_a_second_run_on_a_held_directory_exits_naming_the_holder(tmp_path):
    script = tmp_path / "hold.sh"
    script.write_text(f". {STAGE}\nhold_lock data/.lock\necho held\nsleep ${{1:-0}}\n")
    first = subprocess.Popen(["bash", str(script), "30"], cwd=tmp_path, stdout=subprocess.PIPE,
                             text=True, start_new_session=True)
    try:
        assert first.stdout.readline().strip() == "held"
        second = subprocess.run(["bash", str(script)], cwd=tmp_path, capture_output=True,
                                text=True, timeout=30)
        assert second.returncode == 1 and "held" not in second.stdout
        assert f"data is in use by: pid {first.pid}" in second.stderr
        assert "hold.sh" in second.stderr
    finally:
        # The whole group: its children (sleep here, torchrun's workers in a recipe) hold the
        # lock as long as they live.
        os.killpg(first.pid, 9)
        first.wait()
        # SIGKILL is delivered at once but the group's other processes (the sleep) exit a moment
        # later, and the lock goes with the last of them: wait until none is left.
        for _ in range(200):
            try:
                os.killpg(first.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
    again = subprocess.run(["bash", str(script)], cwd=tmp_path, capture_output=True, text=True,
                           timeout=30)
    assert again.returncode == 0 and "held" in again.stdout  # released with its holder


@pytest.mark.parametrize("args", [["--stage", "10"], ["--stage", "5", "--stop-stage", "3"],
                                  ["--stage", "x"]])
def test_run_sh_refuses_stage_ranges_that_run_nothing(args):
    root = Path(__file__).resolve().parents[2]
    data = root / "egs" / "wsj_librikws" / "data"

    def state():  # every path under data/ with its mtime; the recipe may have run here before
        return sorted((str(p), p.stat().st_mtime_ns) for p in [data, *data.rglob("*")]) \
            if data.exists() else None

    before = state()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    res = subprocess.run(["bash", "run.sh", *args], cwd=root / "egs" / "wsj_librikws", env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert "stages are 0-9" in res.stderr or "must be integers" in res.stderr
    assert state() == before  # nothing written



def run_ok(cwd):
    """bash run.sh in ``cwd``, which must succeed."""
    p = subprocess.run(["bash", "run.sh"], capture_output=True, text=True, cwd=cwd, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    return p


def test_stage_input_lists_hash_the_files_a_stage_listed(tmp_path):
    """$stage_input_lists: files a stage's previous run listed (stage 1: the corpus files it
    read) are hashed into its marker, so editing one reruns the stage and nothing else does."""
    (tmp_path / "corpus.txt").write_text("a\n")
    (tmp_path / "other.txt").write_text("x\n")
    (tmp_path / "run.sh").write_text(f"""#!/usr/bin/env bash
set -euo pipefail
stage=0; stop_stage=100; done_dir=data/.done; force=false
. {STAGE}
step() {{ echo ran >> out.txt; mkdir -p lists; echo "$PWD/corpus.txt" > lists/read.txt; }}
stage_input_lists="lists/read.txt lists/none.txt" run_stage 1 "manifests" log/1.log step
""")

    def go():
        return run_ok(tmp_path)

    go()
    assert f"{tmp_path}/corpus.txt" in (tmp_path / "data/.done/stage_1.done").read_text()
    assert "already done" in go().stdout
    (tmp_path / "other.txt").write_text("y\n")
    assert "already done" in go().stdout
    (tmp_path / "corpus.txt").write_text("b\n")
    p = go()
    assert f"changed: {tmp_path}/corpus.txt" in p.stdout
    assert (tmp_path / "out.txt").read_text().split() == ["ran", "ran"]


def test_marker_hashes_equal_each_file_s_own_sha256(tmp_path):
    """The inputs are hashed by one sha256sum for all (a long list): each recorded hash is the
    file's own (hashlib), whatever its name (spaces; a backslash, which sha256sum escapes: such
    a file is hashed alone)."""
    import hashlib

    names = ["plain.txt", "with space.txt", "back\\slash.txt"] + [f"c{i}.txt" for i in range(300)]
    for i, name in enumerate(names):
        (tmp_path / name).write_text(f"content {i}\n")
    (tmp_path / "dir").mkdir()  # a directory: the names under it, checked below
    (tmp_path / "list.txt").write_text("".join(f"{tmp_path / n}\n" for n in names + ["dir"]))
    (tmp_path / "run.sh").write_text(f"""#!/usr/bin/env bash
set -euo pipefail
stage=0; stop_stage=100; done_dir=data/.done; force=false
. {STAGE}
step() {{ :; }}
stage_input_lists=list.txt run_stage 1 "hash" log/1.log step "$PWD/plain.txt"
""")
    p = subprocess.run(["bash", "run.sh"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    got = {}
    for line in (tmp_path / "data/.done/stage_1.done").read_text().splitlines():
        if line.startswith("input: "):
            h, path = line[len("input: "):].split(" ", 1)
            got[path] = h
    want = {str(tmp_path / n): hashlib.sha256((tmp_path / n).read_bytes()).hexdigest()
            for n in names}
    want[str(tmp_path / "dir")] = hashlib.sha256(b"").hexdigest()  # no file under it
    assert got == want


def test_a_listed_directory_reruns_the_stage_when_a_file_is_added_under_it(tmp_path):
    """A directory in a $stage_input_lists file (stage 1: a corpus directory its preparer
    searched) stands for the names of the files under it: a chapter unpacked into it after the
    stage ran reruns the stage (before: 'already done', and the manifests silently lacked it);
    a file's contents alone (audio) do not."""
    corpus = tmp_path / "my corpus" / "train-clean-100"
    (corpus / "103" / "1240").mkdir(parents=True)
    (corpus / "103" / "1240" / "a.flac").write_bytes(b"1")
    (tmp_path / "run.sh").write_text(f"""#!/usr/bin/env bash
set -euo pipefail
stage=0; stop_stage=100; done_dir=data/.done; force=false
. {STAGE}
step() {{ echo ran >> out.txt; mkdir -p lists; echo "{corpus}" > lists/read.txt; }}
stage_input_lists=lists/read.txt run_stage 1 "manifests" log/1.log step
""")

    def go():
        return run_ok(tmp_path)

    go()
    assert "already done" in go().stdout
    (corpus / "103" / "1240" / "a.flac").write_bytes(b"2")  # contents: not covered
    assert "already done" in go().stdout
    (corpus / "103" / "1241").mkdir()
    (corpus / "103" / "1241" / "103-1241.trans.txt").write_text("103-1241-0000 A\n")
    p = go()
    assert f"files added or removed under: {corpus}" in p.stdout
    assert "already done" in go().stdout
    (corpus / "103" / "1241" / "103-1241.trans.txt").unlink()
    assert f"files added or removed under: {corpus}" in go().stdout
    assert (tmp_path / "out.txt").read_text().split() == ["ran"] * 3


def test_editing_a_corpus_reruns_stage_1_of_a_recipe(tmp_path):
    """README "Adding a corpus": a Kaldi dir + CTM named in local/prepare_manifests.sh. The
    corpus files are not on run.sh's command line; stage 1's marker still covers them, so a
    corrected CTM (or text, wav.scp) reruns stage 1 instead of keeping the old manifests."""
    import re

    import numpy as np
    import soundfile as sf

    corpus = tmp_path / "my corpus"  # a path with a space, as db.sh may hold
    d = corpus / "data"
    d.mkdir(parents=True)
    sf.write(str(corpus / "u1.wav"), np.zeros(16000, np.float32), 16000)
    (d / "wav.scp").write_text(f"u1 {corpus / 'u1.wav'}\n")
    (d / "text").write_text("u1 HELLO WORLD\n")
    (d / "utt2spk").write_text("u1 s1\n")
    (d / "words.ctm").write_text("u1 1 0.10 0.30 HELLO\nu1 1 0.50 0.30 WORLD\n")
    new = tmp_path / "recipe"
    assert subprocess.run(["bash", str(REPO / "utils/make_recipe.sh"), str(new)],
                          capture_output=True).returncode == 0
    db = "".join(line + "\n" for line in (new / "db.sh").read_text().splitlines()
                 if not re.match(r"(KING_ASR_066|WSJ|WSJ_CTM|LIBRIPHRASE|MUSAN|RIRS_NOISES)=", line))
    (new / "db.sh").write_text(db + f'MYCORPUS="{corpus}"\n')
    prep = (new / "local/prepare_manifests.sh").read_text()
    prep = re.sub(r"^prepare .*$\n", "", prep, flags=re.M).replace(
        "prepare_all\n", 'prepare kaldi "$MYCORPUS/data" "$out" --ctm "$MYCORPUS/data/words.ctm" '
        '--name mycorpus --part train\nprepare_all\n')
    (new / "local/prepare_manifests.sh").write_text(prep)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}

    def stage1():
        p = subprocess.run(["bash", "run.sh", "--stage", "1", "--stop-stage", "1"], cwd=new,
                           env=env, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        return p

    def starts():
        sup = json.loads(gzip.open(new / "data/manifests/mycorpus_supervisions_train.jsonl.gz",
                                   "rt").readline())
        return [w[1] for w in sup["alignment"]["word"]]  # lhotse: [symbol, start, duration, score]

    stage1()
    assert starts() == [0.1, 0.5]
    assert "already done" in stage1().stdout
    (d / "words.ctm").write_text("u1 1 0.20 0.30 HELLO\nu1 1 0.60 0.30 WORLD\n")
    p = stage1()
    assert f"changed: {d / 'words.ctm'}" in p.stdout
    assert starts() == [0.2, 0.6]  # the manifests follow the corrected CTM


# --- a run killed mid-stage ----------------------------------------------------------

KILLED_SH = f"""#!/usr/bin/env bash
set -euo pipefail
stage=0; stop_stage=100; done_dir=data/.done; force=false
. {STAGE}
hold_lock data/.lock
step() {{ echo started > started; sleep "$1"; echo finished > finished; }}
run_stage 0 "slow stage" log/0.log step "${{1:-0}}"
echo all-finished
"""


def _pids_in_group(pgid):
    """The live processes of a group (not zombies: where PID 1 does not reap, as in some
    containers, an orphan's exit stays listed)."""
    pids = []
    for d in Path("/proc").iterdir():
        try:
            if (d.name.isdigit() and os.getpgid(int(d.name)) == pgid
                    and (d / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"):
                pids.append(int(d.name))
        except (OSError, IndexError):
            continue
    return pids


def _wait_until(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def _start_killable(tmp_path, seconds):
    (tmp_path / "run.sh").write_text(KILLED_SH)
    p = subprocess.Popen(["bash", "run.sh", str(seconds)], cwd=tmp_path, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert _wait_until(lambda: (tmp_path / "started").exists(), 30)
    return p


def _kill_group(pgid):
    for pid in _pids_in_group(pgid):
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass


def test_after_run_sh_is_killed_nothing_of_it_holds_the_lock_once_the_stage_ends(tmp_path):
    """SIGKILL of run.sh (a job killed by its scheduler, kill -9): the stage's command goes on
    to its end, but the console follower must end with run.sh. Before, it watched itself for
    its parent and looped forever, holding data/.lock: every later run said the directory was
    in use by a run that no longer existed."""
    p = _start_killable(tmp_path, 2)
    try:
        os.kill(p.pid, 9)
        p.wait()
        assert _wait_until(lambda: (tmp_path / "finished").exists(), 30)
        assert _wait_until(lambda: not _pids_in_group(p.pid), 10), \
            [Path(f"/proc/{q}/cmdline").read_bytes() for q in _pids_in_group(p.pid)]
        again = subprocess.run(["bash", "run.sh"], cwd=tmp_path, capture_output=True, text=True,
                               timeout=60)
        assert again.returncode == 0, again.stderr
        assert "all-finished" in again.stdout
    finally:
        _kill_group(p.pid)


@pytest.mark.parametrize("sig", [15, 1, 2])
def test_a_signal_to_run_sh_alone_stops_the_stage_and_says_so(tmp_path, sig):
    """kill PID of run.sh (what its lock message suggests), timeout(1), a hang-up, kill -INT:
    before, run.sh died at once and its stage ran on without it, an orphan that kept writing
    (hours of training) and held the lock. Now the stage's processes are stopped, run.sh says
    which stage was interrupted and that it reruns, and exits 128+signal, the marker unwritten."""
    p = _start_killable(tmp_path, 60)
    try:
        os.kill(p.pid, sig)
        out, err = p.communicate(timeout=40)
        assert p.returncode == 128 + sig, (out, err)
        name = {15: "TERM", 1: "HUP", 2: "INT"}[sig]
        assert f"Stage 0 (slow stage) interrupted by SIG{name}" in err
        assert "log/0.log" in err
        assert not _pids_in_group(p.pid)  # no orphan: the stage's sleep is gone too
        assert not (tmp_path / "finished").exists()
        assert not (tmp_path / "data/.done/stage_0.done").exists()
        again = subprocess.run(["bash", "run.sh"], cwd=tmp_path, capture_output=True, text=True,
                               timeout=60)
        assert again.returncode == 0 and "all-finished" in again.stdout, again.stderr
    finally:
        _kill_group(p.pid)


def test_ctrl_c_of_the_whole_group_stops_the_stage_and_says_so(tmp_path):
    """Ctrl-C on a terminal: SIGINT to every process of the foreground group."""
    p = _start_killable(tmp_path, 60)
    try:
        os.killpg(p.pid, 2)
        out, err = p.communicate(timeout=40)
        assert p.returncode == 130, (out, err)
        assert "Stage 0 (slow stage) interrupted by SIGINT" in err
        assert not _pids_in_group(p.pid)
        assert not (tmp_path / "data/.done/stage_0.done").exists()
    finally:
        _kill_group(p.pid)


def test_a_lock_held_by_what_a_killed_run_left_names_those_processes(tmp_path):
    """After SIGKILL of run.sh its stage runs on (SIGKILL cannot be passed on) and holds the
    lock. Before, the next run named only the PID of the run that was gone, which `kill` then
    said did not exist; now it says so and names the processes that hold the lock."""
    p = _start_killable(tmp_path, 60)
    try:
        os.kill(p.pid, 9)
        p.wait()
        again = subprocess.run(["bash", "run.sh"], cwd=tmp_path, capture_output=True, text=True,
                               timeout=60)
        assert again.returncode == 1 and "all-finished" not in again.stdout
        assert f"data is in use by: pid {p.pid}" in again.stderr
        assert f"pid {p.pid} is gone (killed?), but processes it started still hold the lock" \
            in again.stderr
        sleeps = [q for q in _pids_in_group(p.pid)
                  if Path(f"/proc/{q}/cmdline").read_bytes() == b"sleep\0" + b"60\0"]
        assert len(sleeps) == 1 and f"   {sleeps[0]} (sleep 60 )" in again.stderr, again.stderr
        assert "to stop them: kill " in again.stderr and str(sleeps[0]) in \
            again.stderr.split("to stop them: kill ")[1].splitlines()[0]
    finally:
        _kill_group(p.pid)


def test_runs_that_read_the_data_share_its_lock_and_one_that_writes_it_is_refused(tmp_path):
    """run.sh from stage 6 on (another experiment's training, scoring) only reads data/. Before,
    it took no lock on it, and a run of stages 0-5 beside it (--stage 4 --force true) rewrote the
    features it was reading and deleted their old archives. Now such runs share data/.lock: two
    of them run side by side, and a run that writes data/ is refused, naming them."""
    script = tmp_path / "hold.sh"
    script.write_text(f". {STAGE}\nhold_lock data/.lock $1\necho held\nsleep ${{2:-0}}\n")
    readers = [subprocess.Popen(["bash", str(script), "shared", "30"], cwd=tmp_path,
                                stdout=subprocess.PIPE, text=True, start_new_session=True)
               for _ in range(2)]
    try:
        for r in readers:  # both hold it at once
            assert r.stdout.readline().strip() == "held"
        writer = subprocess.run(["bash", str(script), ""], cwd=tmp_path, capture_output=True,
                                text=True, timeout=30)
        assert writer.returncode == 1 and "held" not in writer.stdout
        for r in readers:
            assert f"pid {r.pid} on " in writer.stderr and "(reading)" in writer.stderr
        assert "wait for that run to finish" in writer.stderr
    finally:
        for r in readers:
            _kill_group(r.pid)
            r.wait()
    for r in readers:
        assert _wait_until(lambda: not _pids_in_group(r.pid), 10)
    writer = subprocess.run(["bash", str(script), ""], cwd=tmp_path, capture_output=True,
                            text=True, timeout=30)
    assert writer.returncode == 0 and "held" in writer.stdout
    # and a reader is refused while a writer runs
    w = subprocess.Popen(["bash", str(script), "", "30"], cwd=tmp_path, stdout=subprocess.PIPE,
                         text=True, start_new_session=True)
    try:
        assert w.stdout.readline().strip() == "held"
        reader = subprocess.run(["bash", str(script), "shared"], cwd=tmp_path,
                                capture_output=True, text=True, timeout=30)
        assert reader.returncode == 1 and f"data is in use by: pid {w.pid} on " in reader.stderr
    finally:
        _kill_group(w.pid)
        w.wait()


@pytest.mark.parametrize("recipe_dir", ["wsj_librikws", "librispeech_libriphrase"])
def test_run_sh_takes_the_data_lock_shared_from_stage_6_on(recipe_dir):
    text = (REPO / "egs" / recipe_dir / "run.sh").read_text()
    assert "if (( stage > 5 )); then hold_lock data/.lock shared; else hold_lock data/.lock; fi" \
        in text


def _as_a_reader_who_cannot_write(args):
    """``args`` run by a user who cannot write the directory made read-only below: this user
    (chmod suffices), or, for root, whom chmod does not stop, nobody (setpriv)."""
    if os.geteuid() != 0:
        return args
    import shutil

    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: no user whom chmod stops")
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *args]


def test_a_data_directory_shared_read_only_is_read_under_a_shared_lock(tmp_path):
    """run.sh from stage 6 on only reads data/, and a group shares one data/ read-only (or it
    sits on a read-only mount): training another experiment from it stopped at once with
    `utils/stage.sh: line 469: data/.lock: Read-only file system` (or Permission denied), as
    hold_lock opened the lock file for writing. Now a reader takes the shared lock on the file
    opened for reading, so the owner's run of stages 0-5 is still refused while it reads; where
    there is no lock file it reads without one and says so; a run that writes is refused,
    naming the file."""
    import tempfile

    # Outside pytest's 0700 directories, so that nobody can reach it when the test runs as root.
    root = Path(tempfile.mkdtemp(prefix="pyadml-shared-data-"))
    try:
        os.chmod(root, 0o755)
        data = root / "data"
        data.mkdir()
        lock = data / ".lock"
        lock.write_text("pid 1 on elsewhere since 2026-01-01 00:00:00: run.sh\n")
        script = root / "hold.sh"
        script.write_text(f". {STAGE}\nhold_lock data/.lock $1\necho held\nsleep ${{2:-0}}\n")
        os.chmod(script, 0o644)
        os.chmod(lock, 0o444)
        os.chmod(data, 0o555)
        reader = subprocess.Popen(_as_a_reader_who_cannot_write(["bash", str(script), "shared", "30"]),
                                  cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, start_new_session=True)
        try:
            assert reader.stdout.readline().strip() == "held", reader.stderr.read()
            # the data's owner (write access back) may not rewrite it while it is read
            os.chmod(data, 0o755)
            os.chmod(lock, 0o644)
            writer = subprocess.run(["bash", str(script), ""], cwd=root, capture_output=True,
                                    text=True, timeout=30)
            assert writer.returncode == 1 and "held" not in writer.stdout, writer.stderr
            assert "data is in use by" in writer.stderr
        finally:
            _kill_group(reader.pid)
            reader.wait()
        assert lock.read_text() == "pid 1 on elsewhere since 2026-01-01 00:00:00: run.sh\n"
        # a run that writes data/ (stages 0-5) where it cannot: refused, naming the lock file
        os.chmod(lock, 0o444)
        os.chmod(data, 0o555)
        res = subprocess.run(_as_a_reader_who_cannot_write(["bash", str(script), ""]), cwd=root,
                             capture_output=True, text=True, timeout=30)
        assert res.returncode == 1 and "held" not in res.stdout
        assert "cannot take the lock data/.lock: " in res.stderr
        assert "data must be writable for what this run does" in res.stderr
        # no lock file to open: read without one, and say so
        os.chmod(data, 0o755)
        lock.unlink()
        os.chmod(data, 0o555)
        res = subprocess.run(_as_a_reader_who_cannot_write(["bash", str(script), "shared"]),
                             cwd=root, capture_output=True, text=True, timeout=30)
        assert res.returncode == 0 and "held" in res.stdout, res.stderr
        assert "data is only read from here on, and its lock file data/.lock cannot be made" \
            in res.stderr
    finally:
        os.chmod(root / "data", 0o755)
        import shutil

        shutil.rmtree(root)


def test_a_stage_that_fails_on_a_full_disk_says_the_disk_is_full(tmp_path):
    """On a full disk the stage's log cannot hold its error either (stage 6 left train.error
    empty, and steps/train.sh pointed at a log without it): the console said `failed with
    status 1` and a tail that gave no reason. Now a full disk of the log's directory or of the
    recipe is named below the tail. `df` is stood in for: no mount is needed."""
    (tmp_path / "run.sh").write_text(RUN_SH)
    (tmp_path / "fail1").touch()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_df = bin_dir / "df"
    fake_df.write_text("#!/bin/sh\necho 'Filesystem 1024-blocks Used Available Capacity Mounted on'\n"
                       "echo \"/dev/vdb 40960 40960 ${FREE_KB} 100% /scratch\"\n")
    fake_df.chmod(0o755)

    def run(free_kb):
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FREE_KB": str(free_kb)}
        return subprocess.run(["bash", "run.sh"], capture_output=True, text=True, cwd=tmp_path,
                               timeout=60, env=env)

    p = run(0)
    assert p.returncode == 3 and "Stage 1 (stage one) failed with status 3" in p.stderr
    last = p.stderr.rstrip("\n").splitlines()[-1]
    assert last == ("** the disk of exp/log (/scratch) is full: 0 KiB free; the stage's error may "
                    "be missing from its log. Free some space, or move the recipe to a larger "
                    "disk, then run again"), p.stderr
    assert p.stderr.count("is full") == 1  # one line per disk, though both paths are on it
    p = run(500000)
    assert p.returncode == 3 and "is full" not in p.stderr
