"""utils/run_slurm.sh (the Slurm backend of $cmd) and multi-node steps/train.sh, on a REAL
two-node Slurm cluster started in a temporary directory: munged, slurmctld and two slurmd
(node1, node2), all on 127.0.0.1 with their own ports, keys, state and logs, read through
SLURM_CONF. The Debian packages (slurmctld slurmd slurm-client munge) come from
utils/setup_env.sh, which the test command runs; without them the cluster tests skip.
All daemons and anything they started are stopped by PID at the end, pass or fail."""

import getpass
import os
import re
import shutil
import signal
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

pytestmark = pytest.mark.slow  # a real two-node Slurm cluster and torchrun trainings

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "egs" / "wsj_librikws"
SLURM_CONF = RECIPE / "conf" / "slurm.conf"
RUN_SLURM = ROOT / "utils" / "run_slurm.sh"
TINY = RECIPE / "conf" / "train_tiny.yaml"
SBIN = "/usr/local/sbin:/usr/sbin:/sbin"
PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
BINARIES = ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "scancel", "srun"]


def base_env(**extra):
    """The caller's environment without any Slurm job variables (CI might run inside a job)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "PYTEST"))}
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}:{SBIN}"
    env["OMP_NUM_THREADS"] = "1"
    env.update(extra)
    return env


def which(name):
    return shutil.which(name, path=f"{os.environ.get('PATH', '')}:{SBIN}")


def missing_slurm_binaries():
    """None when every binary is there, else why not (utils/setup_env.sh installs them)."""
    missing = [b for b in BINARIES if not which(b)]
    if missing:
        return (f"Slurm/munge binaries missing ({', '.join(missing)}); utils/setup_env.sh "
                f"installs {' '.join(PACKAGES)}")
    return None


def free_ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def wait_for(predicate, timeout, what, logs=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    tails = "\n".join(f"--- {p}:\n{p.read_text(errors='replace')[-3000:] if p.exists() else '(none)'}"
                      for p in logs)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{tails}")


def procs_with_env(key, value):
    """PIDs of the processes whose environment has key=value (ours only: the daemons and
    everything they started carry SLURM_CONF=<this test's slurm.conf>)."""
    needle = f"{key}={value}".encode()
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if needle in (d / "environ").read_bytes().split(b"\0"):
                pids.append(int(d.name))
        except OSError:
            continue
    return pids


class Cluster:
    def __init__(self, root: Path):
        self.root = root
        self.conf = root / "slurm.conf"
        self.env = base_env(SLURM_CONF=str(self.conf))
        self.user = getpass.getuser()  # root in CI (the daemons then run as root)
        self.daemons: list[tuple[str, subprocess.Popen]] = []
        self._out = None
        self.logs = [root / "log" / n for n in ("munged.log", "slurmctld.log", "slurmd.node1.log",
                                                "slurmd.node2.log", "daemons.out")]

    def start(self):
        r = self.root
        for d in ("munge", "state", "log", "spool/slurmd.node1", "spool/slurmd.node2"):
            (r / d).mkdir(parents=True, exist_ok=True)
        os.chmod(r / "munge", 0o755)  # munged: the socket's directory must be searchable by all
        key = r / "munge" / "munge.key"
        subprocess.run(["dd", "if=/dev/urandom", f"of={key}", "bs=1024", "count=1"],
                       check=True, capture_output=True)
        os.chmod(key, 0o400)
        sock = r / "munge" / "munge.sock"
        ctld, p1, p2 = free_ports(3)
        # MinJobAge=4: sbatch --wait then polls every 2 s (with the default 300: after 2, 8,
        # then every 32 s); run_slurm.sh reads a job already purged as finished.
        self.conf.write_text(textwrap.dedent(f"""\
            ClusterName=pyadml
            SlurmctldHost=localhost(127.0.0.1)
            SlurmctldPort={ctld}
            AuthType=auth/munge
            CredType=cred/munge
            AuthInfo=socket={sock}
            SlurmUser={self.user}
            SlurmdUser={self.user}
            StateSaveLocation={r}/state
            SlurmdSpoolDir={r}/spool/slurmd.%n
            SlurmctldPidFile={r}/slurmctld.pid
            SlurmdPidFile={r}/slurmd.%n.pid
            SlurmctldLogFile={r}/log/slurmctld.log
            SlurmdLogFile={r}/log/slurmd.%n.log
            ProctrackType=proctrack/linuxproc
            TaskPlugin=task/none
            SelectType=select/cons_tres
            SelectTypeParameters=CR_CPU
            JobAcctGatherType=jobacct_gather/none
            AccountingStorageType=accounting_storage/none
            JobCompType=jobcomp/none
            MpiDefault=none
            ReturnToService=2
            SlurmdParameters=config_overrides
            SchedulerType=sched/builtin
            SchedulerParameters=batch_sched_delay=0
            KillWait=5
            InactiveLimit=0
            MinJobAge=4
            NodeName=node1 NodeAddr=127.0.0.1 NodeHostname=localhost Port={p1} CPUs=1 RealMemory=1000
            NodeName=node2 NodeAddr=127.0.0.1 NodeHostname=localhost Port={p2} CPUs=1 RealMemory=1000
            PartitionName=debug Nodes=node1,node2 Default=YES MaxTime=60 State=UP
            """))
        self._out = out = open(r / "log" / "daemons.out", "ab")
        spawn = dict(env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                     cwd=r, start_new_session=True)
        # Foreground daemons (Popen knows their PIDs). munged --force: pytest's tmp dirs are
        # 0700, which munged's check that every directory above its socket is searchable refuses.
        self.daemons.append(("munged", subprocess.Popen(
            [which("munged"), "--foreground", "--force", f"--socket={sock}", f"--key-file={key}",
             f"--pid-file={r}/munge/munged.pid", f"--log-file={r}/log/munged.log",
             f"--seed-file={r}/munge/munged.seed"], **spawn)))
        wait_for(lambda: self._alive() and sock.exists(), 15, "munged's socket", self.logs)
        self.daemons.append(("slurmctld", subprocess.Popen([which("slurmctld"), "-D"], **spawn)))
        for node in ("node1", "node2"):
            self.daemons.append((f"slurmd {node}", subprocess.Popen(
                [which("slurmd"), "-D", "-N", node], **spawn)))

        def both_idle():
            self._alive()
            res = self.run(["sinfo", "-h", "-N", "-o", "%N %t"], check=False, timeout=10)
            states = dict(line.split() for line in res.stdout.splitlines() if line.strip())
            return states.get("node1") == "idle" and states.get("node2") == "idle"

        wait_for(both_idle, 60, "sinfo to show node1 and node2 idle", self.logs)

    def _alive(self):
        for name, p in self.daemons:
            if p.poll() is not None:
                raise AssertionError(f"{name} exited with {p.returncode}\n" + "\n".join(
                    f"--- {q}:\n{q.read_text(errors='replace')[-3000:]}" for q in self.logs if q.exists()))
        return True

    def run(self, cmd, check=True, timeout=120, **kw):
        res = subprocess.run(cmd, env=kw.pop("env", self.env), capture_output=True, text=True,
                             timeout=timeout, cwd=kw.pop("cwd", ROOT), **kw)
        if check:
            assert res.returncode == 0, f"{cmd}: {res.returncode}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
        return res

    def stop(self):
        """scancel everything, stop the daemons by PID, then kill whatever they left behind."""
        if any(p.poll() is None for name, p in self.daemons if name == "slurmctld"):
            try:
                self.run(["scancel", "--user", self.user], check=False, timeout=15)
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline:
                    q = self.run(["squeue", "-h", "-o", "%i"], check=False, timeout=15)
                    if q.returncode != 0 or not q.stdout.strip():
                        break
                    time.sleep(0.5)
            except subprocess.TimeoutExpired:
                pass
        for _, p in reversed(self.daemons):  # slurmd, slurmctld, then munged
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=15)
        for pid in procs_with_env("SLURM_CONF", str(self.conf)):  # slurmstepd, job steps
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self._out:
            self._out.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = missing_slurm_binaries()
    if reason:
        pytest.skip(reason)
    c = Cluster(tmp_path_factory.mktemp("slurm"))
    try:
        c.start()
        yield c
    finally:
        c.stop()


# --------------------------------------------------------------------------- data
def write_wavs_and_cuts(root: Path) -> Path:
    """Five recordings of noise as a cut manifest (as in tests/data/test_features.py)."""
    from lhotse import CutSet, Recording

    from pyadml.data.features import save_cuts

    rng = np.random.default_rng(0)
    recs = []
    for i, seconds in enumerate([0.31, 0.5, 0.77, 1.0, 1.234]):
        path = root / f"r{i}.wav"
        sf.write(path, 0.1 * rng.standard_normal(int(seconds * 16000)), 16000)
        recs.append(Recording.from_file(path))
    save_cuts(CutSet.from_manifests(recordings=recs), root / "cuts.jsonl.gz")
    return root / "cuts.jsonl.gz"


def overrides(data: Path):
    return [f"data.train={data / 'train.jsonl.gz'}", f"data.dev={data / 'dev.jsonl.gz'}",
            f"data.dev_trials={data / 'dev.tsv'}", f"data.lang={data / 'lang'}", f"data.fbank_config={data / 'fbank.yaml'}",
            "batch.keywords=2", "epochs=2", "threads=1"]


def final_model(exp: Path):
    from pyadml.train.checkpoints import latest_checkpoint

    ckpt = latest_checkpoint(exp / "checkpoints")
    assert ckpt is not None and ckpt.name == "epoch-2.pt", ckpt
    return torch.load(ckpt, map_location="cpu", weights_only=False)["model"]


# --------------------------------------------------------------------------- no cluster needed
def test_cmd_sh_picks_the_backend_with_one_variable():
    def cmd_for(backend):
        env = base_env(PYADML_NPROC="3")
        env.pop("cmd_backend", None)
        if backend is not None:
            env["cmd_backend"] = backend
        return subprocess.run(["bash", "-c", '. ./cmd.sh && printf %s "$cmd"'], cwd=RECIPE, env=env,
                              capture_output=True, text=True, timeout=30)

    assert cmd_for(None).stdout == "utils/run_local.sh --max-jobs-run 3"
    assert cmd_for("local").stdout == "utils/run_local.sh --max-jobs-run 3"
    assert cmd_for("slurm").stdout == "utils/run_slurm.sh --config conf/slurm.conf"
    bad = cmd_for("pbs")
    assert bad.returncode != 0 and "unknown cmd_backend 'pbs'" in bad.stderr


def stand_in_slurm(tmp_path, sbatch: str):
    """The environment of a stand-in Slurm in tmp_path/bin: ``sbatch`` (its script text; it
    finds $FAKE_DIR) and an squeue that shows an empty queue."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(textwrap.dedent(sbatch))
    (bin_dir / "squeue").write_text("#!/bin/bash\nexit 0\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    env = base_env(FAKE_DIR=str(tmp_path), PYADML_SLURM_LOG_WAIT="1")
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    return env, bin_dir


def test_config_maps_options_to_sbatch_flags(tmp_path):
    """With a stand-in sbatch (runs every array task at once) and squeue (an empty queue)."""
    env, bin_dir = stand_in_slurm(tmp_path, """\
        #!/bin/bash
        printf '%s\\n' "$@" > "$FAKE_DIR/sbatch.args"
        cat > "$FAKE_DIR/script.sh"
        array=$(printf '%s\\n' "$@" | sed -n 's/^--array=//p'); array=${array%%%*}
        for i in $(seq ${array%-*} ${array#*-}); do
          SLURM_ARRAY_TASK_ID=$i SLURM_ARRAY_JOB_ID=7 SLURM_JOB_ID=$((7 + i)) bash "$FAKE_DIR/script.sh"
        done
        echo 7
        """)

    def run(*args):
        return subprocess.run(["bash", str(RUN_SLURM), "--config", str(SLURM_CONF), *args], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=60)

    res = run("--mem", "2G", "--time", "10", "--num-threads", "2", "--gpu", "1", "--partition", "gpu",
              "--max-jobs-run", "2", "JOB=1:3", "log/x.JOB.log", "echo", "JOB", "$OMP_NUM_THREADS")
    assert res.returncode == 0, res.stderr
    args = (tmp_path / "sbatch.args").read_text().splitlines()
    assert args[:1] == ["--export=PATH"]
    for flag in ("--mem=2G", "--time=10", "--cpus-per-task=2", "--gres=gpu:1", "--partition=gpu",
                 "--array=1-3%2", "--parsable", "--job-name=x", "--output=log/q/x.%a.out"):
        assert flag in args, (flag, args)
    for i in (1, 2, 3):
        lines = (tmp_path / f"log/x.{i}.log").read_text().splitlines()
        assert lines[0] == f"# echo {i} $OMP_NUM_THREADS"
        assert f"SLURM_ARRAY_TASK_ID={i}" in lines[2] and f"\n{i} 2\n" in "\n".join(lines) + "\n"
        assert lines[-2].startswith("# Accounting: time=") and lines[-2].endswith(" threads=2")
        assert lines[-1].startswith("# Ended (code 0) at ")
    # defaults: gpu=0 and no --mem/--time add nothing; one task at most: no throttle
    res = run("--max-jobs-run", "4", "JOB=1:2", "log/y.JOB.log", "true")
    assert res.returncode == 0, res.stderr
    args = (tmp_path / "sbatch.args").read_text().splitlines()
    assert "--array=1-2" in args and not any(a.startswith(("--gres", "--mem", "--time")) for a in args)
    # an option the config does not describe is an error, as in Kaldi
    res = run("--queue", "long", "log/z.log", "true")
    assert res.returncode == 2 and "--queue long is not described in" in res.stderr
    # a job that never wrote its "# Ended" line counts as failed
    (bin_dir / "sbatch").write_text("#!/bin/bash\ncat > /dev/null\necho 8\n")
    res = run("JOB=1:2", "log/n.JOB.log", "true")
    assert res.returncode == 1 and "2 / 2 failed, log is in log/n.1.log" in res.stderr
    assert "ended without an exit status" in res.stderr


# --------------------------------------------------------------------------- real cluster
def test_fbank_stage_as_a_four_task_array(cluster, tmp_path):
    from lhotse import CutSet

    cuts = write_wavs_and_cuts(tmp_path)
    cmd = f"utils/run_slurm.sh --config {SLURM_CONF} --max-jobs-run 2"
    t0 = time.monotonic()
    res = cluster.run(["bash", "steps/make_fbank.sh", "--nj", "4", "--cmd", cmd,
                       "--fbank-config", str(RECIPE / "conf" / "fbank.yaml"),
                       str(cuts), str(tmp_path / "fbank"), str(tmp_path / "feats.jsonl.gz")], timeout=300)
    wall = time.monotonic() - t0
    print(f"\n[slurm] make_fbank.sh --nj 4 as a Slurm array: {wall:.1f} s wall")
    logs = [tmp_path / "fbank" / "log" / f"fbank_cuts.{i}.log" for i in range(1, 5)]
    array_ids = set()
    for i, log in enumerate(logs, 1):
        lines = log.read_text().splitlines()
        assert lines[0].startswith("# python -m pyadml.bin.fbank compute") and f"cuts.{i}.jsonl.gz" in lines[0]
        assert lines[-1].startswith("# Ended (code 0)"), log.read_text()
        m = re.search(r"SLURM_ARRAY_JOB_ID=(\d+) SLURM_ARRAY_TASK_ID=(\d+) on node (node[12])", lines[2])
        assert m and int(m.group(2)) == i, lines[2]
        array_ids.add(m.group(1))
    assert len(array_ids) == 1, array_ids  # one array job, four tasks
    assert f"submitted Slurm job {array_ids.pop()} (array 1-4%2)" in res.stderr
    assert "--array=1-4%2" in (tmp_path / "fbank" / "log" / "q" / "fbank_cuts.sh").read_text()
    out = CutSet.from_file(tmp_path / "feats.jsonl.gz")
    assert [c.id for c in out] == [c.id for c in CutSet.from_file(cuts)]
    for c in out:
        assert c.has_features and c.load_features().shape[1] == 40



def test_fbank_sets_as_one_array(cluster, tmp_path):
    """steps/make_fbank_sets.sh: one array for all the sets; a set of fewer cuts than --nj has
    fewer parts, and the tasks past them compute only the other set's."""
    from lhotse import CutSet

    from pyadml.data.features import save_cuts

    every = CutSet.from_file(write_wavs_and_cuts(tmp_path)).to_eager()
    sets = tmp_path / "sets"
    save_cuts(every, sets / "five.jsonl.gz")
    save_cuts(every.subset(first=1), sets / "one.jsonl.gz")
    cmd = f"utils/run_slurm.sh --config {SLURM_CONF} --max-jobs-run 2"
    res = cluster.run(["bash", "steps/make_fbank_sets.sh", "--nj", "4", "--cmd", cmd,
                       "--fbank-config", str(RECIPE / "conf" / "fbank.yaml"),
                       str(sets), str(tmp_path / "fbank"), "five", "one"], timeout=300)
    logs = sorted((tmp_path / "fbank" / "log").glob("*.log"))
    assert [p.name for p in logs] == [f"fbank.{i}.log" for i in range(1, 5)]
    array_ids = set()
    for i, log in enumerate(logs, 1):
        text = log.read_text()
        lines = text.splitlines()
        assert lines[-1].startswith("# Ended (code 0)"), text
        m = re.search(r"SLURM_ARRAY_JOB_ID=(\d+) SLURM_ARRAY_TASK_ID=(\d+) on node", lines[2])
        assert m and int(m.group(2)) == i, lines[2]
        array_ids.add(m.group(1))
        assert f"fbank five part {i}/4: " in text
        assert ("fbank one part 1/1: " in text) == (i == 1), text
    assert len(array_ids) == 1, array_ids  # one array job for both sets
    assert f"submitted Slurm job {array_ids.pop()} (array 1-4%2)" in res.stderr
    for name, n in (("five", 5), ("one", 1)):
        out = CutSet.from_file(tmp_path / "fbank" / f"{name}.jsonl.gz")
        assert len(out) == n and all(c.load_features().shape[1] == 40 for c in out)

def test_a_failing_task_fails_the_stage_and_names_its_log(cluster, tmp_path):
    script = textwrap.dedent(f"""\
        set -euo pipefail
        done_dir={tmp_path}/done
        . utils/stage.sh
        run_stage 4 "three tasks, one fails" {tmp_path}/stage4.log \\
          utils/run_slurm.sh --config {SLURM_CONF} JOB=1:3 {tmp_path}/log/t.JOB.log 'test JOB -ne 2'
        """)
    res = cluster.run(["bash", "-c", script], check=False, timeout=180)
    assert res.returncode != 0
    stage_log = (tmp_path / "stage4.log").read_text()
    assert f"1 / 3 failed, log is in {tmp_path}/log/t.2.log" in stage_log
    assert f"{tmp_path}/log/t.2.log" in res.stderr  # the stage's tail names it too
    assert not (tmp_path / "done" / "stage_4.done").exists()
    codes = {i: (tmp_path / f"log/t.{i}.log").read_text().splitlines()[-1] for i in (1, 2, 3)}
    assert codes[1].startswith("# Ended (code 0)") and codes[3].startswith("# Ended (code 0)")
    assert codes[2].startswith("# Ended (code 1)")


def test_a_failed_task_s_last_lines_and_a_killing_signal_are_named(cluster, tmp_path):
    """As run_local.sh: the reason beside the log's name (before: "job 2 exited with code 3"
    and "code 137" for a task the kernel killed for memory, the reason only in the log)."""
    cmd = ('echo start JOB; if [ JOB = 2 ]; then echo "ValueError: bad cut c7" >&2; exit 3; fi;'
           ' if [ JOB = 3 ]; then kill -9 $$; fi')
    res = cluster.run(["bash", str(RUN_SLURM), "--config", str(SLURM_CONF), "JOB=1:3",
                       f"{tmp_path}/t.JOB.log", cmd], check=False, timeout=180)
    assert res.returncode == 1
    assert f"2 / 3 failed, log is in {tmp_path}/t.2.log" in res.stderr
    assert (f"job 3 exited with code 137 (killed by SIGKILL: out of memory, or kill -9?), "
            f"log is in {tmp_path}/t.3.log") in res.stderr
    tail = res.stderr.split(f"run_slurm.sh: last lines of {tmp_path}/t.2.log:\n")[1].splitlines()
    assert tail[-2:] == ["   start 2", "   ValueError: bad cut c7"], res.stderr


def test_a_job_that_can_never_start_is_cancelled_naming_why(cluster, tmp_path):
    """A --time over the partition's limit (MaxTime=60 here), more cores per task than a node
    has: sbatch takes the job and it pends for good. Before, run_slurm.sh (and the stage) waited
    forever on "0/2 tasks done"; now the console shows the reason while it pends, and after
    PYADML_SLURM_PENDING_GRACE seconds the job is cancelled and the reason named."""
    progress = tmp_path / "progress"
    for opts, reason in ((["--time", "2:00:00"], "PartitionTimeLimit"),
                         (["--num-threads", "8"], "PartitionConfig")):
        t0 = time.monotonic()
        res = cluster.run(["bash", str(RUN_SLURM), "--config", str(SLURM_CONF), *opts, "JOB=1:2",
                           f"{tmp_path}/p.JOB.log", "echo hi"], check=False, timeout=120,
                          env={**cluster.env, "PYADML_SLURM_PENDING_GRACE": "3",
                               "PYADML_PROGRESS": str(progress), "PYADML_PROGRESS_INTERVAL": "0"})
        assert res.returncode == 1, res.stderr
        assert time.monotonic() - t0 < 60
        jobid = re.search(r"submitted Slurm job (\d+)", res.stderr).group(1)
        assert f"Slurm job {jobid} cannot start: its tasks pend with reason {reason} (" in res.stderr
        assert "cancelled it; change what it asks for" in res.stderr
        assert f"pending: {reason} (Slurm job {jobid})" in progress.read_text()
        queue = cluster.run(["squeue", "-h", "-j", jobid, "-o", "%i %T"], check=False).stdout
        assert "PENDING" not in queue and "RUNNING" not in queue, queue


def test_two_node_training_equals_two_processes_on_one_node(cluster, tmp_path, tiny_training_data):
    data = tiny_training_data
    ov = overrides(data)

    # Reference: one node, two gloo processes, no Slurm.
    t0 = time.monotonic()
    single = subprocess.run(["bash", "steps/train.sh", "--nproc-per-node", "2", str(TINY),
                             str(tmp_path / "single"), *ov], cwd=ROOT, env=base_env(),
                            capture_output=True, text=True, timeout=300)
    t_single = time.monotonic() - t0
    assert single.returncode == 0, single.stdout[-2000:] + single.stderr[-3000:]

    # Two Slurm nodes, one process each, c10d rendezvous on node1 through srun.
    (port,) = free_ports(1)
    job = tmp_path / "train_2nodes.sh"
    job.write_text("#!/bin/bash\nset -euo pipefail\ncd " + str(ROOT) + "\n. ./path.sh\n"
                   "echo \"job start $(date +%s.%N)\"\n"
                   f"steps/train.sh --nnodes 2 --nproc-per-node 1 --rdzv-port {port} --rdzv-timeout 60 "
                   + " ".join([str(TINY), str(tmp_path / "multi"), *ov]) + "\n"
                   "echo \"job end $(date +%s.%N)\"\n")
    t0 = time.monotonic()
    res = cluster.run(["sbatch", "--nodes", "2", "--wait", "--time", "5", "--output", str(tmp_path / "train.out"),
                       str(job)], check=False, timeout=300)
    t_multi = time.monotonic() - t0
    out = (tmp_path / "train.out").read_text() if (tmp_path / "train.out").exists() else ""
    assert res.returncode == 0, res.stderr + out[-5000:]
    in_job = float(re.search(r"job end ([\d.]+)", out)[1]) - float(re.search(r"job start ([\d.]+)", out)[1])
    print(f"\n[slurm] training, 2 nodes x 1 process: sbatch --wait {t_multi:.1f} s wall "
          f"({in_job:.1f} s inside the job); 1 node x 2 processes: {t_single:.1f} s wall")

    assert "srun --nodes 2 --ntasks 2 --ntasks-per-node 1 --kill-on-bad-exit=1" in out
    assert "--rdzv-backend c10d --rdzv-endpoint 127.0.0.1:%d" % port in out
    for node in ("node1", "node2"):
        assert re.search(rf"node {node} \(SLURM_NODEID \d\): --local-addr 127\.0\.0\.1, OMP_NUM_THREADS=1", out)
    assert "is_host=1" in out and "is_host=0" in out
    for rank in (0, 1):
        assert "world 2" in (tmp_path / "multi/log/train.rank0.log").read_text()
        assert (tmp_path / f"multi/log/train.rank{rank}.log").exists()

    # Same seed, same world size, same shards: the same model. The gradients are averaged
    # over two ranks either way (the rank order of the nodes may differ, and a + b == b + a),
    # so the results agree bit for bit in practice; allow float32 round-off anyway.
    a, b = final_model(tmp_path / "single"), final_model(tmp_path / "multi")
    assert a.keys() == b.keys()
    diff = max(float((a[k].double() - b[k].double()).abs().max()) if a[k].numel() else 0.0 for k in a)
    print(f"[slurm] max |2-node - 1-node| over model tensors: {diff:.3g}")
    for k in a:
        assert torch.allclose(a[k].double(), b[k].double(), rtol=1e-5, atol=1e-6), k


def test_a_missing_node_fails_the_rendezvous_in_seconds(tmp_path):
    """Without Slurm: node 0 of 2 alone; --rdzv-timeout 5 ends it instead of torchrun's 600 s."""
    (port,) = free_ports(1)
    t0 = time.monotonic()
    res = subprocess.run(["bash", "steps/train.sh", "--nnodes", "2", "--node-rank", "0",
                          "--rdzv-endpoint", f"127.0.0.1:{port}", "--local-addr", "127.0.0.1",
                          "--rdzv-timeout", "5", str(TINY), str(tmp_path / "exp")],
                         cwd=ROOT, env=base_env(), capture_output=True, text=True, timeout=120)
    wall = time.monotonic() - t0
    assert res.returncode != 0
    assert "join_timeout=5,read_timeout=5" in res.stdout and "--max-restarts 0" in res.stdout
    assert wall < 60, wall
    assert re.search(r"Rendezvous|timed out|timeout", res.stderr, re.I), res.stderr[-2000:]


def test_a_task_slurm_requeued_is_reported_with_its_log(tmp_path):
    """A stand-in sbatch runs task 2 as Slurm runs a requeued task (SLURM_RESTART_COUNT=1), and
    task 3 requeued and failing. Before: nothing said that a task had been requeued after a node
    failure, which explains a run that took twice as long."""
    env, _ = stand_in_slurm(tmp_path, """\
        #!/bin/bash
        cat > "$FAKE_DIR/script.sh"
        for i in 1 2 3; do
          SLURM_ARRAY_TASK_ID=$i SLURM_ARRAY_JOB_ID=7 SLURM_JOB_ID=$((7 + i)) \\
            SLURM_RESTART_COUNT=$(( i > 1 )) bash "$FAKE_DIR/script.sh"
        done
        echo 7
        """)
    res = subprocess.run(["bash", str(RUN_SLURM), "--config", str(SLURM_CONF), "JOB=1:3",
                          "log/x.JOB.log", "test", "JOB", "-lt", "3"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1, res.stderr
    for i in (2, 3):
        assert (f"job {i} was requeued by Slurm 1 time(s) (a node failure or preemption) and ran "
                f"again from the start, log is in log/x.{i}.log") in res.stderr
        assert "# Requeued by Slurm 1 time(s)" in (tmp_path / f"log/x.{i}.log").read_text()
    assert "job 1 was requeued" not in res.stderr
    assert "1 / 3 failed, log is in log/x.3.log" in res.stderr
