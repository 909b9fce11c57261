"""utils/parse_options.sh, exercised through real bash."""

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PARSE_OPTIONS = REPO / "utils" / "parse_options.sh"

SCRIPT = f"""#!/usr/bin/env bash
set -euo pipefail
stage=0
stop_stage=100
nj=4
use_gpu=false
cmd=run.pl
opts=
help_message="Usage: $0 [options] <data-dir>\\n  --stage N   first stage to run"
. {PARSE_OPTIONS} || exit 1
echo "stage=$stage"
echo "stop_stage=$stop_stage"
echo "nj=$nj"
echo "use_gpu=$use_gpu"
echo "cmd=$cmd"
echo "opts=$opts"
echo "nargs=$#"
for a in "$@"; do echo "arg=$a"; done
echo "leaked=$(set | grep -c '^__po_' || true)"
echo "script-continued"
"""


@pytest.fixture
def run(tmp_path):
    script = tmp_path / "script.sh"
    script.write_text(SCRIPT)

    def _run(*args):
        return subprocess.run(
            ["bash", str(script), *args],
            capture_output=True, text=True, cwd=tmp_path, timeout=30,
        )

    return _run


def parsed(proc):
    """key -> value for the script's echo lines (args collected in a list)."""
    out = {"arg": []}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("=")
        if key == "arg":
            out["arg"].append(value)
        else:
            out[key] = value
    return out


def test_bash_syntax():
    subprocess.run(["bash", "-n", str(PARSE_OPTIONS)], check=True)


def test_defaults_and_no_leaks(run):
    p = run()
    assert p.returncode == 0, p.stderr
    v = parsed(p)
    assert (v["stage"], v["nj"], v["use_gpu"], v["cmd"]) == ("0", "4", "false", "run.pl")
    assert v["nargs"] == "0"
    assert v["leaked"] == "0"


def test_space_and_equals_forms(run):
    p = run("--stage", "3", "--nj=8")
    assert p.returncode == 0, p.stderr
    v = parsed(p)
    assert v["stage"] == "3"
    assert v["nj"] == "8"


def test_equals_form_keeps_later_equals_signs(run):
    p = run("--opts=a=b")
    assert p.returncode == 0, p.stderr
    assert parsed(p)["opts"] == "a=b"


@pytest.mark.parametrize("spelling", ["--stop-stage", "--stop_stage"])
def test_dash_underscore_equivalence(run, spelling):
    p = run(spelling, "7")
    assert p.returncode == 0, p.stderr
    assert parsed(p)["stop_stage"] == "7"
    p = run(f"{spelling}=9")
    assert parsed(p)["stop_stage"] == "9"


def test_unknown_option_fails_with_usage(run):
    p = run("--foo", "1", "data")
    assert p.returncode == 1
    assert "unknown option --foo" in p.stderr
    assert "Usage:" in p.stderr and "--stage N" in p.stderr
    assert "script-continued" not in p.stdout


def test_unknown_option_equals_form(run):
    p = run("--no-such=1")
    assert p.returncode == 1
    assert "unknown option --no-such" in p.stderr


def test_generic_usage_without_help_message(tmp_path):
    script = tmp_path / "plain.sh"
    script.write_text(f"set -euo pipefail\nnj=1\n. {PARSE_OPTIONS}\necho ok\n")
    p = subprocess.run(["bash", str(script), "--bogus", "x"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    assert "unknown option --bogus" in p.stderr
    assert "Usage:" in p.stderr
    assert "ok" not in p.stdout


def test_missing_value_fails(run):
    p = run("--nj")
    assert p.returncode == 1
    assert "--nj" in p.stderr and "requires a value" in p.stderr
    assert "Usage:" in p.stderr
    assert "script-continued" not in p.stdout


@pytest.mark.parametrize("value", ["true", "false"])
def test_boolean_accepts_true_false(run, value):
    p = run("--use-gpu", value)
    assert p.returncode == 0, p.stderr
    assert parsed(p)["use_gpu"] == value


@pytest.mark.parametrize("value", ["yes", "1", "True", ""])
def test_boolean_rejects_other_values(run, value):
    p = run("--use-gpu", value)
    assert p.returncode == 1
    assert "--use-gpu" in p.stderr
    assert f"'{value}'" in p.stderr
    assert "script-continued" not in p.stdout


def test_config_sourced_first_and_overridden(run, tmp_path):
    conf = tmp_path / "my.conf"
    conf.write_text("# comment\nnj=16\nstage=5\ncmd='queue.pl --mem 4G'\n")
    # --nj precedes --config but must still win: the config is applied first.
    p = run("--nj", "2", "--config", str(conf), "data")
    assert p.returncode == 0, p.stderr
    v = parsed(p)
    assert v["nj"] == "2"
    assert v["stage"] == "5"
    assert v["cmd"] == "queue.pl --mem 4G"
    assert v["arg"] == ["data"]


def test_config_equals_form(run, tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text("nj=11\n")
    p = run(f"--config={conf}")
    assert p.returncode == 0, p.stderr
    assert parsed(p)["nj"] == "11"


def test_config_may_define_new_variables(tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text("extra_var=hello\n")
    script = tmp_path / "s.sh"
    script.write_text(
        f"set -euo pipefail\nnj=1\n. {PARSE_OPTIONS}\necho \"extra=$extra_var\"\n")
    p = subprocess.run(["bash", str(script), "--config", str(conf)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert "extra=hello" in p.stdout


def test_missing_config_fails(run, tmp_path):
    missing = tmp_path / "nope.conf"
    p = run("--config", str(missing))
    assert p.returncode == 1
    assert str(missing) in p.stderr
    assert "script-continued" not in p.stdout


def test_values_with_spaces_and_leading_dash(run):
    p = run("--cmd", "run.pl --mem 2G", "--opts", "-x 1")
    assert p.returncode == 0, p.stderr
    v = parsed(p)
    assert v["cmd"] == "run.pl --mem 2G"
    assert v["opts"] == "-x 1"


def test_positional_args_left_over(run):
    p = run("--nj", "3", "data/train", "exp dir", "--stage", "9")
    assert p.returncode == 0, p.stderr
    v = parsed(p)
    assert v["nj"] == "3"
    assert v["stage"] == "0"  # parsing stopped at the first positional
    assert v["nargs"] == "4"
    assert v["arg"] == ["data/train", "exp dir", "--stage", "9"]


def test_double_dash_ends_options(run):
    p = run("--nj", "3", "--", "--stage", "x")
    assert p.returncode == 0, p.stderr
    v = parsed(p)
    assert v["stage"] == "0"
    assert v["arg"] == ["--stage", "x"]


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_exits_zero(run, flag):
    p = run("--nj", "2", flag)
    assert p.returncode == 0
    assert "Usage:" in p.stdout and "--stage N" in p.stdout
    assert "script-continued" not in p.stdout



@pytest.mark.parametrize("recipe", ["wsj_librikws", "librispeech_libriphrase"])
def test_run_sh_help_lists_every_option_it_takes(recipe):
    """The options block of run.sh (the variables from stage=0 to help_message, which
    utils/parse_options.sh lets a user set) against its help text: before, --synth-config was
    taken but not listed."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "egs" / recipe / "run.sh").read_text()
    block = text[text.index("\nstage=0\n"):text.index("\nhelp_message=")]
    names = re.findall(r"(?m)^([a-z_]+)=", block)
    assert {"stage", "stop_stage", "synth_config", "train_config"} <= set(names)
    help_text = text[text.index("\nhelp_message="):text.index("\n. utils/parse_options.sh")]
    listed = set(re.findall(r"(?m)^  --([a-z-]+)", help_text))
    assert {n.replace("_", "-") for n in names} - listed == set()
