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
