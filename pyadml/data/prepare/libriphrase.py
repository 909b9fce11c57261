"""The LibriPhrase corpus: its pair CSVs, one recording per wav, and the pair rows."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from lhotse import RecordingSet, SupervisionSegment, SupervisionSet

from pyadml.data.prepare.audio import _probe
from pyadml.data.prepare.common import (
    SAMPLING_RATE,
    CorpusError,
    _lhotse_validate,
    _lines,
    _number,
    _where,
    _write_pair,
    note_input,
    write_manifest,
)
from pyadml.data.prepare.registry import register_corpus

LIBRIPHRASE_COLUMNS = (
    "anchor", "anchor_spk", "anchor_text", "anchor_dur", "comparison", "comparison_spk",
    "comparison_text", "comparison_dur", "type", "target", "class",
)
# type -> the target it implies; LibriPhrase ships diffspk_* (samespk_* follows the same rule).
LIBRIPHRASE_TYPES = {
    f"{spk}_{kind}": int(kind == "positive")
    for spk in ("diffspk", "samespk")
    for kind in ("positive", "easyneg", "hardneg")
}


@register_corpus("libriphrase")
def prepare_libriphrase(
    corpus_dir: str | os.PathLike, output_dir=None, part: str = "test",
    sampling_rate: int = SAMPLING_RATE,
) -> dict:
    """LibriPhrase from ``data/libriphrase_diffspk_all_{1,2,3,4}word.csv`` (those present).

    One recording per distinct wav (paths relative to ``corpus_dir``) with id = the file stem,
    which must be unique; one supervision over the whole recording, text = the phrase lower-
    cased, speaker = the spk column. Returns ``dict(recordings, supervisions, rows)``: rows are
    the CSV rows as dicts (``target`` int, durations float, the rest strings) plus
    ``anchor_id``, ``comparison_id``, ``file`` and ``line`` (the header is line 1); they are
    also written to ``libriphrase_pairs_<part>.jsonl.gz``.
    """
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise CorpusError(f"{corpus_dir}: LibriPhrase corpus directory does not exist")
    note_input(corpus_dir / "data")  # a CSV added to it later reruns stage 1
    csvs = [corpus_dir / "data" / f"libriphrase_diffspk_all_{n}word.csv" for n in (1, 2, 3, 4)]
    csvs = [p for p in csvs if p.is_file()]
    if not csvs:
        raise CorpusError(f"{corpus_dir / 'data'}: no libriphrase_diffspk_all_{{1,2,3,4}}word.csv")

    rows: list[dict] = []
    wavs: dict[str, dict] = {}  # relative path -> id, text, speaker, where
    stems: dict[str, str] = {}  # id -> relative path
    for path in csvs:
        # UTF-8, else the line and byte are named; a byte-order mark (a CSV saved by Excel or
        # pandas' utf-8-sig) is not part of the first column's name.
        for _ in _lines(path):
            pass
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise CorpusError(f"{path}: empty file; expected a header {','.join(LIBRIPHRASE_COLUMNS)}")
            header = [h.strip() for h in header]
            for col in LIBRIPHRASE_COLUMNS:
                if col not in header:
                    raise CorpusError(f"{path}:1: header lacks column {col!r} (has {header})")
            for fields in reader:
                where = _where(path, reader.line_num)
                if not fields:
                    continue
                if len(fields) != len(header):
                    raise CorpusError(f"{where}: expected {len(header)} fields, found {len(fields)}")
                row = dict(zip(header, (x.strip() for x in fields)))
                for col in LIBRIPHRASE_COLUMNS:
                    if not row[col]:
                        raise CorpusError(f"{where}: empty field {col!r}")
                if row["type"] not in LIBRIPHRASE_TYPES:
                    raise CorpusError(f"{where}: unknown type {row['type']!r}; expected one of "
                                      f"{', '.join(LIBRIPHRASE_TYPES)}")
                if row["target"] not in ("0", "1"):
                    raise CorpusError(f"{where}: target must be 0 or 1, got {row['target']!r}")
                row["target"] = int(row["target"])
                if row["target"] != LIBRIPHRASE_TYPES[row["type"]]:
                    raise CorpusError(f"{where}: target {row['target']} contradicts type "
                                      f"{row['type']} (positive pairs are 1, negatives 0)")
                for side in ("anchor", "comparison"):
                    dur = _number(row[f"{side}_dur"], f"{side}_dur", where)
                    if dur <= 0:
                        raise CorpusError(f"{where}: {side}_dur must be positive, got {dur}")
                    row[f"{side}_dur"] = dur
                    rel = os.path.normpath(row[side])
                    text, spk = row[f"{side}_text"].lower(), row[f"{side}_spk"]
                    if rel not in wavs:
                        rec_id = Path(rel).stem
                        if rec_id in stems:
                            raise CorpusError(f"{where}: {rel} and {stems[rec_id]} (first in "
                                              f"{wavs[stems[rec_id]]['where']}) share the file "
                                              f"name {rec_id!r}, used as the recording id")
                        stems[rec_id] = rel
                        wavs[rel] = {"id": rec_id, "text": text, "speaker": spk, "where": where}
                    w = wavs[rel]
                    if w["text"] != text:
                        raise CorpusError(f"{where}: {rel} has text {text!r} but {w['text']!r} "
                                          f"in {w['where']}")
                    if w["speaker"] != spk:
                        raise CorpusError(f"{where}: {rel} has speaker {spk!r} but "
                                          f"{w['speaker']!r} in {w['where']}")
                    row[f"{side}_id"] = w["id"]
                row["file"], row["line"] = str(path), reader.line_num
                rows.append(row)

    if wavs and not any((corpus_dir / rel).exists() for rel in wavs):
        rel, w = next(iter(wavs.items()))
        raise CorpusError(f"{w['where']}: none of the {len(wavs)} wavs the CSVs name is under "
                          f"{corpus_dir} (e.g. {corpus_dir / rel}): their paths are relative to the "
                          f"LibriPhrase directory, the one holding the wavs (LibriPhrase's "
                          f"libriphrase.py writes them under its --newpath); put data/ with the "
                          f"CSVs there, and LIBRIPHRASE in db.sh")
    recordings, sups = [], []
    for rel, w in wavs.items():
        rec = _probe(str((corpus_dir / rel).absolute()), w["where"], sampling_rate).recording(w["id"])
        recordings.append(rec)
        sups.append(SupervisionSegment(id=w["id"], recording_id=w["id"], start=0.0,
                                       duration=rec.duration, channel=0, text=w["text"],
                                       speaker=w["speaker"]))
    rec_set = RecordingSet.from_recordings(recordings)
    sup_set = SupervisionSet.from_segments(sups)
    _lhotse_validate(rec_set, sup_set, str(corpus_dir))
    if output_dir is not None:
        _write_pair(output_dir, "libriphrase", part, rec_set, sup_set)
        write_manifest(Path(output_dir) / f"libriphrase_pairs_{part}.jsonl.gz", rows)
    return {"recordings": rec_set, "supervisions": sup_set, "rows": rows}
