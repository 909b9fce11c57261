"""Stage 8's learning curves (pyadml.score.plots): curves.png from a hand-written
metrics.jsonl, the dev AP comparison of sibling experiments, and their links under the results
table."""

import json

from pyadml.score.evaluate import training_curves
from pyadml.score.plots import plot_training_curves, read_metrics
from pyadml.score.report import plots_line

PNG = b"\x89PNG\r\n\x1a\n"


def write_metrics(exp, dev_aps, resumed=False):
    exp.mkdir(parents=True)
    lines = []
    step = 0
    for epoch, ap in enumerate(dev_aps):
        for _ in range(3):
            step += 2
            lines.append({"epoch": epoch, "step": step, "lr": 1e-3, "utt_per_s": 50.0,
                          "l_utt": 2.0 / step, "l_mm": 0.5, "l_adv_utt": 0.69, "loss": 3.2 / step})
        lines.append({"epoch": epoch + 1, "step": step, "dev_ap": ap, "epoch_seconds": 10.0})
    text = "\n".join(json.dumps(r) for r in lines) + "\n"
    if resumed:  # a step logged twice (the second wins) and a line cut by a crash
        text += json.dumps({"epoch": 1, "step": 2, "loss": 9.0}) + "\n" + '{"epoch": 1, "st'
    (exp / "metrics.jsonl").write_text(text)
    return exp / "metrics.jsonl"


def test_read_metrics_keeps_one_record_per_step_and_epoch(tmp_path):
    path = write_metrics(tmp_path / "exp" / "a", [0.2, 0.3], resumed=True)
    steps, epochs = read_metrics(path)
    assert [r["step"] for r in steps] == [2, 4, 6, 8, 10, 12]
    assert steps[0]["loss"] == 9.0
    assert [(r["epoch"], r["dev_ap"]) for r in epochs] == [(1, 0.2), (2, 0.3)]


def test_curves_png_from_a_hand_written_metrics_file(tmp_path):
    path = write_metrics(tmp_path / "exp" / "a", [0.2, 0.35, 0.4])
    out = plot_training_curves(path, tmp_path / "curves.png", title="a")
    data = out.read_bytes()
    assert data.startswith(PNG) and len(data) > 10_000


def test_stage_8_links_the_curves_and_compares_the_experiments(tmp_path):
    exp = tmp_path / "exp"
    write_metrics(exp / "adml", [0.2, 0.35])
    results = exp / "adml" / "results"
    results.mkdir()
    # alone: the curves only
    assert training_curves(None, results, exp / "adml" / "final.pt") == {"training curves": "curves.png"}
    assert (results / "curves.png").read_bytes().startswith(PNG)
    assert not (results / "dev_ap_compare.png").exists()
    # a sibling experiment with dev AP: the comparison too; one without metrics is ignored
    write_metrics(exp / "rp", [0.1, 0.15, 0.2])
    (exp / "broken").mkdir()
    links = training_curves(None, results, exp / "adml" / "final.pt")
    assert links == {"training curves": "curves.png", "dev AP of 2 experiments": "dev_ap_compare.png"}
    assert (results / "dev_ap_compare.png").read_bytes().startswith(PNG)
    line = plots_line({"ROC": "roc.png", **links})
    assert line == ("plots: [ROC](roc.png) · [training curves](curves.png) · "
                    "[dev AP of 2 experiments](dev_ap_compare.png)\n")
    # no metrics.jsonl anywhere: nothing
    assert training_curves(None, tmp_path / "elsewhere", tmp_path / "model.pt") == {}
