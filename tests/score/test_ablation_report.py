import json

from pyadml.bin.ablation_report import main
from pyadml.score.ablation import collect, table4, tables


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


def fake_lp(exp, row, seed, eer_e, eer_h, auc_e, auc_h):
    d = exp / row / f"seed{seed}" / "results"
    d.mkdir(parents=True)
    sets = {"lp_lp_e": {"EER": eer_e, "AUC": auc_e, "AP": 0.9},
            "lp_lp_h": {"EER": eer_h, "AUC": auc_h, "AP": 0.7}, "wsj_clean": {"AP": 0.5}}
    (d / "metrics.json").write_text(json.dumps({"sets": sets}))


def test_table4_libriphrase_eer_and_auc_beside_the_papers(tmp_path):
    assert table4(tmp_path, "lp") == ""
    fake_lp(tmp_path, "table2_cmcd", 1, 0.10, 0.40, 0.95, 0.60)
    fake_lp(tmp_path, "table2_cmcd", 2, 0.20, 0.30, 0.85, 0.70)
    fake_lp(tmp_path, "table3_sphereface2", 1, 0.05, 0.25, 0.99, 0.80)
    text = table4(tmp_path, "lp")
    # CMCD: EER LP_E mean 15 (std of 10 and 20: 7.07), LP_H 35, AUC 90 and 65; paper 4.20 etc.
    assert ("| table2_cmcd | CMCD | 15.00 ± 7.07 (n=2) | 4.20 | 35.00 ± 7.07 (n=2) | 25.94 | "
            "90.00 ± 7.07 (n=2) | 99.12 | 65.00 ± 7.07 (n=2) | 81.14 |") in text
    assert "| table3_sphereface2 | ADML+SF2 | 5.00 | 1.33 | 25.00 | 20.09 | 99.00 | 99.86 | 80.00 | 88.71 |" in text
    assert "| table2_phonmatchnet | PhonMatchNet | not run | 2.33 |" in text
    assert "| row | method | EER LP_E ours (%) | EER LP_E paper (%) | EER LP_H ours (%) |" in text
    md = tmp_path / "RESULTS.md"
    assert main(["--exp-dir", str(tmp_path), "--test-set", "wsj_clean", "--pairs-set", "lp",
                 "--results-md", str(md)]) == 0
    out = md.read_text()
    assert "## Ablations (Tables 1-4, wsj_clean AP)" in out and "### Table 4" in out
