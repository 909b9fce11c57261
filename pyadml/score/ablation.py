"""The paper's Tables 1-4 from local/run_ablation.sh's runs. Tables 1-3: our WSJ-like AP beside
the paper's, and our relative change against our RP baseline beside the paper's relative change.
Table 4: LibriPhrase LP_E / LP_H EER and AUC of the two baseline detectors, RP and ADML+SF2,
ours beside the paper's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# (row config, description, the paper's WSJ AP in %), in the paper's order.
TABLES = {
    "Table 1: phoneme-level matching losses": [
        ("table1_rp", "RP loss, no phoneme level", 75.10),
        ("table1_proxy_bd", "RP + Proxy-BD (MSP)", 83.72),
        ("table1_proxy_ms", "RP + Proxy-MS (ELSE)", 84.32),
        ("table1_clat", "RP + clat (InfoNCE)", 83.59),
        ("table1_asyp", "RP + AsyP (ELSE+MSP)", 84.42),
        ("table1_asyp_adams", "RP + AsyP with AdaMS", 85.54),
    ],
    "Table 2: modality adversarial learning": [
        ("table1_rp", "utt DML", 75.10),
        ("table2_mal_utt", "utt DML + utt MAL", 81.41),
        ("table1_asyp_adams", "utt DML + phn DML", 85.54),
        ("table2_asyp_adams_mal_phn", "utt DML + phn DML + phn MAL", 86.12),
        ("table2_adml", "utt and phn DML + MAL (ADML)", 86.23),
    ],
    # The bottom rows (the baseline detectors of pyadml.models.baselines). The paper's text
    # export lists 46.17, 49.60, 69.97, 72.45 with the MAL rows last; read as CMCD and
    # PhonMatchNet without MAL, then each with phoneme-level MAL.
    "Table 2 (bottom): baseline detectors with and without phoneme-level MAL": [
        ("table2_cmcd", "CMCD (BCE + MM)", 46.17),
        ("table2_cmcd_mal", "CMCD + phn MAL", 69.97),
        ("table2_phonmatchnet", "PhonMatchNet (BCE + phoneme BCE)", 49.60),
        ("table2_phonmatchnet_mal", "PhonMatchNet + phn MAL", 72.45),
    ],
    "Table 3: keyword classification losses": [
        ("table2_adml", "ADML, no L_key", 86.23),
        ("table3_triplet", "ADML + triplet", 86.25),
        ("table3_aam", "ADML + AAM-softmax", 87.44),
        ("table3_sphereface2", "ADML + SphereFace2", 90.24),
    ],
}
PAPER_BASELINE = 75.10

# Table 4: (row config, method, the paper's EER LP_E, LP_H, AUC LP_E, LP_H in %).
TABLE4 = [
    ("table2_cmcd", "CMCD", 4.20, 25.94, 99.12, 81.14),
    ("table2_phonmatchnet", "PhonMatchNet", 2.33, 24.11, 99.70, 83.39),
    ("table1_rp", "RP loss", 1.54, 22.45, 99.84, 85.31),
    ("table3_sphereface2", "ADML+SF2", 1.33, 20.09, 99.86, 88.71),
]


def _runs(exp_dir: Path) -> list[tuple[str, dict]]:
    """(row, the per-set metrics) of every seed that has results, each file read once."""
    return [(path.parents[2].name, json.loads(path.read_text())["sets"])
            for path in sorted(exp_dir.glob("*/seed*/results/metrics.json"))]


def collect(exp_dir: Path | list, test_set: str, metric: str = "AP") -> dict[str, list[float]]:
    """row -> the metric on ``test_set`` (a trial list name) of each seed that has results;
    ``exp_dir`` may also be the runs ``_runs`` read."""
    out: dict[str, list[float]] = {}
    for row, sets in (_runs(exp_dir) if isinstance(exp_dir, Path) else exp_dir):
        if test_set in sets:
            out.setdefault(row, []).append(100 * float(sets[test_set][metric]))
    return out


def _fmt(values: list[float]) -> str:
    if not values:
        return "not run"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f} (n={len(values)})"


def tables(ours: dict[str, list[float]]) -> str:
    base = np.mean(ours["table1_rp"]) if ours.get("table1_rp") else None
    parts = []
    for title, rows in TABLES.items():
        lines = [f"### {title}", "",
                 "| row | method | our AP (%) | paper AP (%) | our rel. change vs our RP | paper rel. change |",
                 "|---|---|---|---|---|---|"]
        for name, desc, paper in rows:
            vals = ours.get(name, [])
            rel = f"{100 * (np.mean(vals) / base - 1):+.2f}%" if vals and base else "-"
            lines.append(f"| {name} | {desc} | {_fmt(vals)} | {paper:.2f} | {rel} | "
                         f"{100 * (paper / PAPER_BASELINE - 1):+.2f}% |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def table4(exp_dir: Path, pairs_set: str) -> str:
    """Table 4 from the rows scored on ``pairs_set`` (a pairs test set: its trial lists
    ``<pairs_set>_lp_e`` and ``_lp_h``); empty when no row has them."""
    cols = [(f"{pairs_set}_lp_e", "EER"), (f"{pairs_set}_lp_h", "EER"),
            (f"{pairs_set}_lp_e", "AUC"), (f"{pairs_set}_lp_h", "AUC")]
    runs = _runs(exp_dir)
    ours = [collect(runs, s, m) for s, m in cols]
    if not any(ours):
        return ""
    head = [f"{m} {s[-4:].upper()} {who} (%)" for s, m in cols for who in ("ours", "paper")]
    lines = ["### Table 4: LibriPhrase-like LP_E / LP_H", "",
             "| row | method | " + " | ".join(head) + " |", "|---" * (2 + len(head)) + "|"]
    for name, desc, *paper in TABLE4:
        cells = [f"{_fmt(o.get(name, []))} | {p:.2f}" for o, p in zip(ours, paper)]
        lines.append(f"| {name} | {desc} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
