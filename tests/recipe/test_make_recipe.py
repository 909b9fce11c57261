"""utils/make_recipe.sh: a new recipe directory as README's "Adding a corpus" makes it."""

import os
import stat
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_new_recipe_gets_the_mode_mkdir_would_give(tmp_path):
    """Built under mktemp -d (0700) and renamed: the recipe must still get the umask's mode,
    like every other directory of the toolkit, so a group on a shared cluster can read it."""
    dest = tmp_path / "egs" / "mycorpus"
    for umask, mode in (("022", 0o755), ("027", 0o750)):
        res = subprocess.run(["bash", "-c", f'umask {umask}; bash "$0" "$1"',
                              str(REPO / "utils/make_recipe.sh"), str(dest)],
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        assert stat.S_IMODE(dest.stat().st_mode) == mode, (umask, oct(dest.stat().st_mode))
        assert (dest / "run.sh").is_file() and os.path.islink(dest / "steps")
        subprocess.run(["rm", "-rf", str(dest)], check=True)


def test_help_prints_the_usage_and_makes_nothing(tmp_path):
    """Before, `--help` was taken for the new directory's name: it said "made --help" (after mv
    printed its own help) and left nothing usable; `--nosuch` likewise."""
    script = str(REPO / "utils/make_recipe.sh")
    res = subprocess.run(["bash", script, "--help"], cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.startswith("Usage: "), res.stdout + res.stderr
    res = subprocess.run(["bash", script, "--nosuch"], cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 1 and "unknown option '--nosuch'" in res.stderr
    assert list(tmp_path.iterdir()) == []


def test_run_from_a_recipe_directory_it_copies_the_toolkits_recipe(tmp_path):
    """`bash utils/make_recipe.sh ../mycorpus` inside egs/wsj_librikws, where utils is a link:
    before, the default recipe was looked for under the link (egs/wsj_librikws/egs/wsj_librikws,
    "not a recipe directory")."""
    dest = tmp_path / "mycorpus"
    res = subprocess.run(["bash", "utils/make_recipe.sh", str(dest)],
                         cwd=REPO / "egs" / "wsj_librikws", capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert (dest / "run.sh").read_text() == (REPO / "egs/wsj_librikws/run.sh").read_text()
    assert os.path.realpath(dest / "steps") == str((REPO / "steps").resolve())
