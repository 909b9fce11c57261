"""ONNX export: parity with torch on real fbank, and a torch-free spotter and CLI."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
from conftest import FBANK, RATE, speechlike

from pyadml.data.dataset import mean_normalize
from pyadml.data.features import fbank_extractor
from pyadml.spot import KeywordSpotter, SpotError
from pyadml.spot.onnx_export import parity

ROOT = Path(__file__).resolve().parents[2]


def test_onnx_matches_torch_on_real_fbank(tiny_model, onnx_dir, espeak_wav):
    x, _ = sf.read(espeak_wav, dtype="float32")
    ext = fbank_extractor(FBANK)
    # Utterances of different lengths in one padded batch: dynamic batch and time axes.
    feats = [mean_normalize(ext.extract(x[a:b], RATE))
             for a, b in [(0, x.size), (4000, 16000), (8000, 8000 + 3200)]]
    diff = parity(tiny_model, onnx_dir, feats, ["computer", "turn on the light", "yes", "a"])
    assert diff["audio"] <= 1e-4 and diff["text"] <= 1e-4
    cfg = json.loads((onnx_dir / "spotter.json").read_text())
    assert cfg["format"] == "pyadml-kws-onnx/1" and cfg["features"]["mean_norm"] is True


def test_onnx_and_torch_spotters_agree(tiny_model, onnx_dir):
    x = speechlike(6, seed=5)
    dets = {}
    for backend, path in (("torch", tiny_model), ("onnx", onnx_dir)):
        sp = KeywordSpotter.load(path, backend=backend, num_threads=1, threshold=-1.0)
        sp.enroll(["computer", "yes"])
        dets[backend] = sp.detect((x, RATE))
    assert [(d.keyword, d.start) for d in dets["torch"]] == [(d.keyword, d.start) for d in dets["onnx"]]
    assert max(abs(a.score - b.score) for a, b in zip(dets["torch"], dets["onnx"])) < 1e-4


def test_onnx_backend_never_imports_torch(onnx_dir, tmp_path):
    wav = tmp_path / "a.wav"
    sf.write(wav, speechlike(2.5, seed=2), RATE)
    out = tmp_path / "d.tsv"
    code = f"""
import runpy, sys
from pyadml import KeywordSpotter
sp = KeywordSpotter.load({str(onnx_dir)!r}, backend="onnx", threshold=-1.0)
sp.enroll(["computer", "turn on the light"])
assert sp.detect({str(wav)!r}) and set(sp.score({str(wav)!r})) == {{"computer", "turn on the light"}}
list(sp.stream([]  if False else [__import__("numpy").zeros(4000, "float32")]))
sys.argv = ["detect", "--model", {str(onnx_dir)!r}, "--backend", "onnx", "--keywords", "computer",
            "--threshold", "-1", "--out", {str(out)!r}, {str(wav)!r}]
try:
    runpy.run_module("pyadml.bin.detect", run_name="__main__")
except SystemExit as e:
    assert e.code == 0, e.code
bad = sorted(m for m in sys.modules if m == "torch" or m.startswith(("torch.", "lhotse")))
print("TORCH-FREE" if not bad else f"IMPORTED {{bad[:5]}}")
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert "TORCH-FREE" in res.stdout, res.stdout
    assert out.read_text().startswith("file\tkeyword\tstart\tend\tscore\n")
    assert len(out.read_text().splitlines()) > 1


def test_onnx_directory_errors(onnx_dir, tmp_path, tiny_model):
    with pytest.raises(SpotError, match="not an ONNX spotter directory"):
        KeywordSpotter.load(tmp_path, backend="onnx")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "spotter.json").write_text(json.dumps({"format": "pyadml-kws-onnx/99"}))
    with pytest.raises(SpotError, match="pyadml-kws-onnx/99"):
        KeywordSpotter.load(bad)
    with pytest.raises(SpotError, match="needs the directory"):
        KeywordSpotter.load(tiny_model, backend="onnx")


def test_export_check_accepts_only_a_whole_export_of_this_model(onnx_dir, tiny_model, tmp_path,
                                                              capsys):
    """export_onnx --check: 0 for the export of this final.pt, 1 naming the reason for another
    model's export or a directory that is no export; it writes nothing."""
    import shutil

    from pyadml.bin import export_onnx as cli

    before = sorted((p.name, p.stat().st_mtime_ns) for p in onnx_dir.iterdir())
    assert cli.main(["--model", str(tiny_model), "--out-dir", str(onnx_dir), "--check"]) == 0
    assert sorted((p.name, p.stat().st_mtime_ns) for p in onnx_dir.iterdir()) == before
    other = tmp_path / "other.pt"
    shutil.copy(tiny_model, other)
    with open(other, "ab") as f:
        f.write(b"\0")  # another file: another sha256
    capsys.readouterr()
    assert cli.main(["--model", str(other), "--out-dir", str(onnx_dir), "--check"]) == 1
    assert "exported from another model than" in capsys.readouterr().err
    assert cli.main(["--model", str(tiny_model), "--out-dir", str(tmp_path / "none"), "--check"]) == 1
    assert "none" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_an_export_with_a_graph_missing_or_from_another_export_is_refused(onnx_dir, tiny_model,
                                                                         tmp_path, capsys):
    """Before: `export_onnx --check` said `is a whole export` of a directory without its
    text_encoder.onnx, or with the audio_encoder.onnx of another model's export, and the latter
    loaded and scored that other model's embeddings without a word. spotter.json records each
    graph's sha256; a moved (copied) export is still whole."""
    import shutil

    from conftest import tiny_model_file

    from pyadml.bin import export_onnx as cli
    from pyadml.spot.onnx_export import export_onnx

    moved = tmp_path / "elsewhere" / "onnx"
    shutil.copytree(onnx_dir, moved)
    assert cli.main(["--model", str(tiny_model), "--out-dir", str(moved), "--check"]) == 0
    KeywordSpotter.load(moved, backend="onnx")
    other = tmp_path / "other"
    export_onnx(tiny_model_file(tmp_path / "other.pt", seed=1), other)
    mixed = tmp_path / "mixed"
    shutil.copytree(onnx_dir, mixed)
    shutil.copy(other / "audio_encoder.onnx", mixed / "audio_encoder.onnx")
    capsys.readouterr()
    assert cli.main(["--model", str(tiny_model), "--out-dir", str(mixed), "--check"]) == 1
    err = capsys.readouterr().err
    assert "mixed/audio_encoder.onnx: not the graph this export wrote" in err
    assert "copied from another export?" in err and "export_onnx --model" in err
    with pytest.raises(SpotError, match="audio_encoder.onnx: not the graph this export wrote"):
        KeywordSpotter.load(mixed, backend="onnx")
    (moved / "text_encoder.onnx").unlink()
    assert cli.main(["--model", str(tiny_model), "--out-dir", str(moved), "--check"]) == 1
    assert "text_encoder.onnx: missing from the ONNX export" in capsys.readouterr().err
