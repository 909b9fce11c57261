import json

from pyadml.bin.ablation_report import main
from pyadml.score.ablation import collect, tables


def fake(exp, row, seed, ap):
    d = exp / row / f"seed{seed}" / "results"
    d.mkdir(parents=True)
    (d / "metrics.json").write_text(json.dumps({"sets": {"wsj_clean": {"AP": ap}}}))


def test_tables_in_the_papers_shape(tmp_path):
    fake(tmp_path, "table1_rp", 1, 0.50)
    fake(tmp_path, "table1_rp", 2, 0.60)
    fake(tmp_path, "table1_asyp_adams", 1, 0.66)
    ours = collect(tmp_path, "wsj_clean")
    assert ours == {"table1_asyp_adams": [66.0], "table1_rp": [50.0, 60.0]}
    text = tables(ours)
    # our RP baseline is the mean of its seeds (55); 66 is +20% on it; the paper's AdaMS row +13.90%
    assert "| table1_asyp_adams | RP + AsyP with AdaMS | 66.00 | 85.54 | +20.00% | +13.90% |" in text
    assert "55.00 ± 7.07 (n=2)" in text
    assert "| table3_aam | ADML + AAM-softmax | not run | 87.44 | - | +16.43% |" in text
    assert text.count("### Table") == 4
    assert "| table2_phonmatchnet_mal | PhonMatchNet + phn MAL | not run | 72.45 | - |" in text


def test_results_md_section(tmp_path):
    fake(tmp_path / "exp", "table1_rp", 1, 0.5)
    md = tmp_path / "RESULTS.md"
    md.write_text("# Results\n\n## Other\n\nkeep me\n")
    assert main(["--exp-dir", str(tmp_path / "exp"), "--test-set", "wsj_clean", "--results-md", str(md),
                 "--note", "2 epochs"]) == 0
    text = md.read_text()
    assert "keep me" in text and "## Ablations (Tables 1-3, wsj_clean AP)" in text and "2 epochs" in text
