"""Every stage and CLI is a fresh Python process, so heavy imports that a process does not use
are paid on every call: scipy.signal (a second) and matplotlib (half a second) load only where
they are used."""

import subprocess
import sys

HEAVY = ("scipy.signal", "scipy.stats", "matplotlib")


def test_training_and_scoring_processes_do_not_import_what_they_do_not_use():
    code = ("import sys\n"
            "import pyadml.train.trainer, pyadml.score.evaluate, pyadml.score.clips, pyadml.score.pairs\n"
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.split() == []


def test_the_plots_and_augmentations_still_load_them_when_used(tmp_path):
    import numpy as np

    from pyadml.data.augment import _lowpass_taps
    from pyadml.score.plots import plot_roc_det_pr

    assert len(_lowpass_taps(16000, 3400.0, 400.0, 60.0)) % 2 == 1
    scores, labels = np.array([0.9, 0.2, 0.6, 0.1]), np.array([1, 0, 1, 0])
    written = plot_roc_det_pr({"set": (scores, labels)}, tmp_path)
    assert [p.name for p in written] == ["roc.png", "det.png", "pr.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written)
    assert {"scipy.signal", "matplotlib"} <= set(sys.modules)
