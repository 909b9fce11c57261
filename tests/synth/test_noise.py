"""pyadml.synth.noise: the MUSAN-like stand-in must load through lhotse's own prepare_musan."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lhotse.recipes import prepare_musan

from pyadml.synth.noise import GENRES, NOISE_KINDS, make_musan_like

SR = 16000
DURATION = 1.5
# One file per noise kind and per genre, so every synthesis path runs.
COUNTS = {"music": len(GENRES), "noise": len(NOISE_KINDS), "speech": 3}


def speech_like_clips(n: int = 4) -> list[np.ndarray]:
    """Harmonic tones with a gliding pitch and ~4 Hz syllable-rate amplitude modulation."""
    clips = []
    for i in range(n):
        t = np.arange(int((0.6 + 0.25 * i) * SR)) / SR
        f0 = (110 + 30 * i) * (1 + 0.1 * np.sin(2 * np.pi * 1.5 * t))
        phase = 2 * np.pi * np.cumsum(f0) / SR
        x = sum(np.sin(k * phase) / k for k in range(1, 10))
        x *= 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t) * np.hanning(t.size)
        clips.append((0.3 * x / np.max(np.abs(x))).astype(np.float32))
    return clips


def build(out_dir: Path, seed: int = 7, **overrides) -> dict:
    kwargs = dict(n_music=COUNTS["music"], n_noise=COUNTS["noise"], n_speech=COUNTS["speech"],
                  speech_clips=speech_like_clips(), duration=DURATION, seed=seed)
    kwargs.update(overrides)
    return make_musan_like(out_dir, **kwargs)


@pytest.fixture(scope="module")
def musan(tmp_path_factory):
    out = tmp_path_factory.mktemp("musan")
    return out, build(out)


def file_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_and_return_value(musan):
    out, summary = musan
    assert summary["music"] == COUNTS["music"]
    assert summary["noise"] == COUNTS["noise"]
    assert summary["speech"] == COUNTS["speech"]
    assert summary["seconds"] == pytest.approx(DURATION * sum(COUNTS.values()))
    assert (out / "README").read_text().startswith("Synthetic stand-in for MUSAN")
    for part, count in COUNTS.items():
        names = sorted(p.name for p in (out / part / "synth").glob("*.wav"))
        assert names == [f"{part}-synth-{i:04d}.wav" for i in range(count)]
    annotations = (out / "music" / "synth" / "ANNOTATIONS").read_text().splitlines()
    assert [line.split()[0] for line in annotations] == [f"music-synth-{i:04d}" for i in range(COUNTS["music"])]
    assert all(len(line.split()) == 4 for line in annotations)


def test_lhotse_prepare_musan_accepts_it(musan):
    out, _ = musan
    manifests = prepare_musan(out)
    n = round(DURATION * SR)
    for part, count in COUNTS.items():
        recordings = manifests[part]["recordings"]
        assert len(recordings) == count
        for rec in recordings:
            assert rec.sampling_rate == SR
            assert rec.num_channels == 1
            assert abs(rec.num_samples - n) <= 1
    sups = manifests["music"]["supervisions"]
    assert len(sups) == COUNTS["music"]
    assert sorted(s.recording_id for s in sups) == sorted(manifests["music"]["recordings"].ids)
    assert {s.custom["genres"][0] for s in sups} == set(GENRES)
    assert not any(s.custom["vocals"] for s in sups)
    assert all(s.duration == pytest.approx(DURATION) for s in sups)


def test_audio_is_audible_bounded_and_never_digital_silence(musan):
    out, _ = musan
    wavs = sorted(out.rglob("*.wav"))
    assert len(wavs) == sum(COUNTS.values())
    for wav in wavs:
        x, sr = sf.read(wav, dtype="float64")
        info = sf.info(wav)
        assert (sr, info.channels, info.subtype) == (SR, 1, "PCM_16")
        assert np.all(np.isfinite(x))
        peak = np.max(np.abs(x))
        assert peak <= 1.0
        assert -12.5 <= 20 * np.log10(peak) <= -2.5, wav.name
        assert np.sqrt(np.mean(x ** 2)) > 10 ** (-50 / 20), wav.name
        # Dither: no run of 50 exactly-zero samples (3 ms) anywhere, pauses included.
        zero_runs = np.convolve((x == 0).astype(int), np.ones(50, dtype=int), "valid")
        assert zero_runs.max() < 50, wav.name


def test_same_seed_is_byte_identical_other_seed_differs(musan, tmp_path):
    out, _ = musan
    build(tmp_path / "again")
    assert file_bytes(tmp_path / "again") == file_bytes(out)

    build(tmp_path / "other", seed=8)
    first, other = file_bytes(out), file_bytes(tmp_path / "other")
    assert first.keys() == other.keys()
    for name in first:
        if name.endswith(".wav"):
            assert first[name] != other[name], name


def test_rerun_with_fewer_files_removes_the_extra_ones(tmp_path):
    build(tmp_path, n_music=2, n_noise=3, n_speech=2, duration=0.5)
    build(tmp_path, n_music=1, n_noise=1, n_speech=1, duration=0.5)
    manifests = prepare_musan(tmp_path)
    assert [len(manifests[p]["recordings"]) for p in ("music", "noise", "speech")] == [1, 1, 1]
    assert len(manifests["music"]["supervisions"]) == 1
    # lhotse's validate() fails on an empty RecordingSet, so a part with no files must be
    # left out of prepare_musan's parts.
    build(tmp_path, n_music=1, n_noise=1, n_speech=0, duration=0.5)
    manifests = prepare_musan(tmp_path, parts=("music", "noise"))
    assert not list((tmp_path / "speech" / "synth").glob("*.wav"))


def test_speech_without_clips_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="speech clip"):
        make_musan_like(tmp_path, n_music=1, n_noise=1, speech_clips=[], n_speech=1,
                        duration=1.0, seed=0)
    # No speech wanted: no clips needed.
    summary = make_musan_like(tmp_path, n_music=1, n_noise=1, speech_clips=[], n_speech=0,
                              duration=0.5, seed=0)
    assert summary["speech"] == 0
