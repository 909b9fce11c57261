"""utils/run_local.sh (local backend of the $cmd contract), through real bash."""

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUN_LOCAL = REPO / "utils" / "run_local.sh"


def run(tmp_path, *args, env=None):
    return subprocess.run(
        ["bash", str(RUN_LOCAL), *args],
        capture_output=True, text=True, cwd=tmp_path, timeout=60, env=env,
    )


def last_line(path):
    return path.read_text().rstrip("\n").splitlines()[-1]


def test_bash_syntax_and_executable():
    subprocess.run(["bash", "-n", str(RUN_LOCAL)], check=True)
    assert os.access(RUN_LOCAL, os.X_OK)


def test_four_jobs_write_files_and_logs(tmp_path):
    p = run(tmp_path, "JOB=1:4", "exp/log/w.JOB.log",
            "echo", "JOB", ">", "out.JOB.txt")
    assert p.returncode == 0, p.stderr
    for i in range(1, 5):
        assert (tmp_path / f"out.{i}.txt").read_text() == f"{i}\n"
        log = tmp_path / "exp" / "log" / f"w.{i}.log"
        lines = log.read_text().splitlines()
        assert lines[0] == f"# echo {i} > out.{i}.txt"
        assert lines[1].startswith("# Started at ")
        assert lines[-2].startswith("# Accounting: time=")
        assert lines[-2].endswith(" threads=1")
        assert lines[-1].startswith("# Ended (code 0) at ")
        assert lines[-1].endswith(" seconds")
    assert not (tmp_path / "exp" / "log" / "w.5.log").exists()


def test_substitution_in_log_path_and_command(tmp_path):
    p = run(tmp_path, "JOB=2:3", "logs/JOB/x.JOB.log",
            "echo", "part=JOB", "of=JOB/3", "nosubst=job")
    assert p.returncode == 0, p.stderr
    for i in (2, 3):
        text = (tmp_path / "logs" / str(i) / f"x.{i}.log").read_text()
        assert f"part={i} of={i}/3 nosubst=job\n" in text
    assert not (tmp_path / "logs" / "1").exists()


def test_other_variable_name(tmp_path):
    p = run(tmp_path, "TASK=1:3", "log.TASK", "echo task-TASK")
    assert p.returncode == 0, p.stderr
    for i in (1, 2, 3):
        assert f"\ntask-{i}\n" in (tmp_path / f"log.{i}").read_text()


def test_quoted_pipeline_as_single_word(tmp_path):
    p = run(tmp_path, "JOB=1:2", "l.JOB", "echo JOB | tr 1 x > o.JOB")
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "o.1").read_text() == "x\n"
    assert (tmp_path / "o.2").read_text() == "2\n"


def test_escaped_operators_and_args_with_spaces_and_quotes(tmp_path):
    args = ["a b", "it's", '"q"', "", "JOB-x"]
    p = run(tmp_path, "JOB=1:2", "l.JOB",
            "python3", "-c", "import sys; print(repr(sys.argv[1:]))", *args,
            "|", "tr", "-d", "[", ">", "out.JOB")
    assert p.returncode == 0, p.stderr
    for i in (1, 2):
        got = (tmp_path / f"out.{i}").read_text()
        expected = repr(["a b", "it's", '"q"', "", f"{i}-x"]).replace("[", "")
        assert got == expected + "\n"


def test_cwd_unchanged(tmp_path):
    p = run(tmp_path, "l.log", "pwd")
    assert p.returncode == 0, p.stderr
    assert f"\n{tmp_path}\n" in (tmp_path / "l.log").read_text()


CONCURRENCY_JOB = (
    "touch running/JOB; "
    "n=$(ls running | wc -l); echo $n >> counts/JOB; "
    "sleep 0.3; "
    "n=$(ls running | wc -l); echo $n >> counts/JOB; "
    "rm running/JOB"
)


def max_concurrency(tmp_path, *opts, n=6):
    (tmp_path / "running").mkdir()
    (tmp_path / "counts").mkdir()
    p = run(tmp_path, *opts, f"JOB=1:{n}", "log/c.JOB.log", CONCURRENCY_JOB)
    assert p.returncode == 0, p.stderr
    counts = [int(x) for f in (tmp_path / "counts").iterdir()
              for x in f.read_text().split()]
    assert len(counts) == 2 * n
    assert not any((tmp_path / "running").iterdir())
    return max(counts)


def test_max_jobs_run_limits_concurrency(tmp_path):
    assert max_concurrency(tmp_path, "--max-jobs-run", "2") <= 2


def test_max_jobs_run_equals_form(tmp_path):
    assert max_concurrency(tmp_path, "--max-jobs-run=1", n=3) == 1


def test_jobs_run_in_parallel(tmp_path):
    assert max_concurrency(tmp_path, "--max-jobs-run", "4", n=4) > 1


def test_default_runs_all_in_parallel(tmp_path):
    assert max_concurrency(tmp_path, n=3) > 1


def test_failing_job(tmp_path):
    cmd = 'if [ JOB = 3 ]; then echo boom; exit 3; fi; echo JOB > done.JOB'
    p = run(tmp_path, "--max-jobs-run", "2", "JOB=1:5", "log/f.JOB.log", cmd)
    assert p.returncode == 1
    assert "1 / 5 failed" in p.stderr
    assert "log/f.3.log" in p.stderr
    log3 = tmp_path / "log" / "f.3.log"
    assert "\nboom\n" in log3.read_text()
    assert last_line(log3).startswith("# Ended (code 3) at ")
    for i in (1, 2, 4, 5):
        assert (tmp_path / f"done.{i}").read_text() == f"{i}\n"
        assert last_line(tmp_path / "log" / f"f.{i}.log").startswith("# Ended (code 0)")


def test_several_failures_all_reported(tmp_path):
    p = run(tmp_path, "JOB=1:4", "log/f.JOB.log", "exit $(( JOB % 2 ))")
    assert p.returncode == 1
    first = p.stderr.splitlines()[0]
    assert first == "run_local.sh: 2 / 4 failed, log is in log/f.1.log"
    assert "log/f.3.log" in p.stderr
    assert "log/f.2.log" not in p.stderr
    assert last_line(tmp_path / "log" / "f.3.log").startswith("# Ended (code 1)")


def test_failure_waits_for_slow_jobs(tmp_path):
    cmd = 'if [ JOB = 1 ]; then exit 1; fi; sleep 0.5; touch done.JOB'
    p = run(tmp_path, "JOB=1:3", "l.JOB", cmd)
    assert p.returncode == 1
    assert (tmp_path / "done.2").exists() and (tmp_path / "done.3").exists()


def test_single_job(tmp_path):
    p = run(tmp_path, "exp/one.log", "echo", "hello JOB", "world")
    assert p.returncode == 0, p.stderr
    text = (tmp_path / "exp" / "one.log").read_text()
    assert text.startswith("# echo 'hello JOB' world\n# Started at ")
    assert "\nhello JOB world\n" in text
    assert last_line(tmp_path / "exp" / "one.log").startswith("# Ended (code 0)")


def test_single_job_failure(tmp_path):
    p = run(tmp_path, "one.log", "false")
    assert p.returncode == 1
    assert "1 / 1 failed, log is in one.log" in p.stderr
    assert last_line(tmp_path / "one.log").startswith("# Ended (code 1)")


def test_single_index_range(tmp_path):
    p = run(tmp_path, "JOB=7", "l.JOB", "echo JOB")
    assert p.returncode == 0, p.stderr
    assert "\n7\n" in (tmp_path / "l.7").read_text()


def test_stderr_goes_to_log_and_stdin_is_empty(tmp_path):
    p = subprocess.run(
        ["bash", str(RUN_LOCAL), "l.log", "echo err >&2; cat; echo out"],
        input="should-not-be-read\n", capture_output=True, text=True,
        cwd=tmp_path, timeout=60,
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout == ""
    text = (tmp_path / "l.log").read_text()
    assert "\nerr\nout\n" in text
    assert "should-not-be-read" not in text


def test_compat_options_and_num_threads(tmp_path):
    p = run(tmp_path, "--mem", "4G", "--time=1:00:00", "--config", "conf/queue.conf",
            "--num-threads", "3", "--gpu", "0",
            "l.log", "echo threads=$OMP_NUM_THREADS")
    assert p.returncode == 0, p.stderr
    text = (tmp_path / "l.log").read_text()
    assert "\nthreads=3\n" in text
    assert "# Accounting: time=" in text and " threads=3\n" in text


def test_gpu_without_nvidia_smi_warns_but_runs(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    needed = ["bash", "date", "mkdir", "dirname", "mktemp", "rm", "wc", "cat", "touch"]
    for tool in needed:
        path = subprocess.run(["bash", "-c", f"command -v {tool}"],
                              capture_output=True, text=True).stdout.strip()
        (bindir / tool).symlink_to(path)
    env = dict(os.environ, PATH=str(bindir))
    p = run(tmp_path, "--gpu", "1", "l.log", "touch ran", env=env)
    assert p.returncode == 0, p.stderr
    assert "nvidia-smi" in p.stderr and "warning" in p.stderr
    assert (tmp_path / "ran").exists()


@pytest.mark.parametrize("args", [
    [],
    ["only.log"],
    ["JOB=1:3", "l.JOB"],
    ["JOB=a:b", "l.JOB", "true"],
    ["JOB=1:x", "l.JOB", "true"],
    ["JOB=1-3", "l.JOB", "true"],
    ["JOB=3:1", "l.JOB", "true"],
    ["--bogus", "1", "l.log", "true"],
    ["--max-jobs-run", "0", "JOB=1:2", "l.JOB", "true"],
    ["--max-jobs-run", "two", "JOB=1:2", "l.JOB", "true"],
    ["--max-jobs-run"],
    ["JOB=1:2", "shared.log", "true"],
])
def test_bad_usage(tmp_path, args):
    p = run(tmp_path, *args)
    assert p.returncode != 0
    assert "Usage:" in p.stderr
    assert not (tmp_path / "l.1").exists()
    assert not list(tmp_path.iterdir())


def test_help(tmp_path):
    p = run(tmp_path, "--help")
    assert p.returncode == 0
    assert "Usage:" in p.stdout


def test_a_failed_job_s_last_lines_and_a_killing_signal_are_on_stderr(tmp_path):
    """The reason beside the log's name: before, only "job 2 exited with code 3, log is in …"
    (and code 137 for a job the kernel killed for memory), and the reason was in the log."""
    cmd = ('echo start JOB; if [ JOB = 2 ]; then printf "bar 1%%\\rbar 100%%\\n";'
           ' echo "ValueError: bad cut c7" >&2; exit 3; fi')
    p = run(tmp_path, "JOB=1:3", "log/f.JOB.log", cmd)
    assert p.returncode == 1
    tail = p.stderr.split("run_local.sh: last lines of log/f.2.log:\n")[1].splitlines()
    assert tail[-3:] == ["   start 2", "   bar 100%", "   ValueError: bad cut c7"]
    assert "# Ended" not in p.stderr and "start 1" not in p.stderr
    # one job killed by SIGKILL (what the kernel's OOM killer sends)
    p = run(tmp_path, "one.log", "echo working; kill -9 $$")
    assert p.returncode == 1
    assert ("job 1 exited with code 137 (killed by SIGKILL: out of memory, or kill -9?), "
            "log is in one.log") in p.stderr
    assert "   working" in p.stderr and "Killed" not in p.stderr


@pytest.mark.parametrize("step, args", [
    ("steps/detect.sh", ["--keywords", "computer", "final.pt", "data/test", "out"]),
    ("steps/make_fbank.sh", ["data/cuts.jsonl.gz", "data/fbank"]),
    ("steps/make_fbank_sets.sh", ["data/cuts", "data/fbank", "test"]),
])
def test_a_step_given_an_empty_cmd_says_to_source_cmd_sh(tmp_path, step, args):
    """`--cmd "$cmd"` in a shell that did not source cmd.sh: before, `JOB=1:4: command not found`
    (status 127) after the step had split its input."""
    (tmp_path / "steps").symlink_to(REPO / "steps")
    (tmp_path / "utils").symlink_to(REPO / "utils")
    p = subprocess.run(["bash", step, "--cmd", "", *args], capture_output=True, text=True,
                       cwd=tmp_path, timeout=60)
    assert p.returncode == 1, p.stderr
    assert f"{step}: --cmd is empty: source the recipe's cmd.sh first" in p.stderr
    assert "command not found" not in p.stderr and not (tmp_path / "out").exists()


def test_a_tmpdir_that_cannot_be_written_does_not_fail_the_jobs(tmp_path):
    """The jobs' statuses lived under $TMPDIR. One that was missing or read-only (a cluster
    job's TMPDIR set on a machine where it does not exist) stopped every $cmd at `mktemp: failed
    to create directory via template ...`, while Python's steps ran on (tempfile falls back to
    /tmp); one that was full made every job look failed, `job 1 exited with code unknown`,
    though its log said `Ended (code 0)`. Now they live beside the logs and go at the end."""
    not_a_dir = tmp_path / "tmpdir-file"
    not_a_dir.write_text("")
    for tmpdir in (tmp_path / "no-such-dir", not_a_dir):
        env = {**os.environ, "TMPDIR": str(tmpdir)}
        p = run(tmp_path, "JOB=1:2", "exp/log/w.JOB.log", "echo", "JOB", ">", "out.JOB.txt",
                env=env)
        assert p.returncode == 0, p.stderr
        assert (tmp_path / "out.2.txt").read_text() == "2\n"
        assert sorted(x.name for x in (tmp_path / "exp" / "log").iterdir()) == ["w.1.log", "w.2.log"]


def test_a_log_directory_that_cannot_be_written_is_named(tmp_path):
    (tmp_path / "exp").write_text("")  # a file where the log directory should be
    p = run(tmp_path, "JOB=1:2", "exp/log/w.JOB.log", "true")
    assert p.returncode == 1
    assert p.stderr.startswith("run_local.sh: cannot write in exp/log, where the jobs' logs go: "
                               "mkdir: cannot create directory"), p.stderr
