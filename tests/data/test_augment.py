"""pyadml.data.augment: lazy, seeded RIR/MUSAN/speed/band-limit augmentation of word cuts."""

import re
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lhotse import CutSet, MonoCut, Recording, RecordingSet, SupervisionSegment
from lhotse.augmentation import AudioTransform
from scipy import signal

from pyadml.bin import augment_cuts as cli
from pyadml.data.augment import (
    DEFAULT_CONFIG, BandLimit, Clip, SpeedPerturb, augment_cuts, augment_eval_cuts,
    check_augment_config, load_augment_config, perturb_speed,
)

SR = 16000
REPO = Path(__file__).resolve().parents[2]
WORDS = ["hello", "world", "market", "open", "people"]


def speech_like(seconds: float, f0: float, seed: int) -> np.ndarray:
    """Harmonic tone with a gliding pitch and ~4 Hz syllable-rate envelope."""
    t = np.arange(int(seconds * SR)) / SR
    f = f0 * (1 + 0.1 * np.sin(2 * np.pi * 1.3 * t + seed))
    phase = 2 * np.pi * np.cumsum(f) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 12))
    x *= 0.3 + 0.7 * np.abs(np.sin(2 * np.pi * 2.0 * t + seed))
    return 0.3 * x / np.max(np.abs(x))


def write(path: Path, x: np.ndarray) -> Recording:
    sf.write(str(path), x.astype(np.float32), SR, subtype="FLOAT")
    return Recording.from_file(path)


def recordings(tmp: Path, prefix: str, signals) -> RecordingSet:
    return RecordingSet.from_recordings(
        write(tmp / f"{prefix}{i}.wav", x) for i, x in enumerate(signals))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("augment")
    rng = np.random.default_rng(0)
    utts = recordings(tmp, "utt", [speech_like(2.0, 110 + 25 * i, i) for i in range(3)])
    # Word cuts of 1 s; some start inside the utterance to exercise offsets.
    cuts = []
    for i, (rec, start) in enumerate([(0, 0.0), (0, 1.0), (1, 0.5), (2, 0.25), (2, 1.0)]):
        r = utts[f"utt{rec}"]
        cid = f"utt{rec}_{i:03d}"
        sup = SupervisionSegment(id=cid, recording_id=r.id, start=0.1, duration=0.8,
                                 channel=0, text=WORDS[i], speaker=f"spk{rec}")
        cuts.append(MonoCut(id=cid, start=start, duration=1.0, channel=0, recording=r,
                            supervisions=[sup]))
    t = np.arange(2 * SR) / SR
    music = 0.2 * sum(np.sin(2 * np.pi * f * t) for f in (220, 277, 330, 440))
    decay = np.exp(-np.arange(int(0.3 * SR)) / (0.05 * SR))
    rirs = []
    for i in range(2):
        h = 0.1 * rng.standard_normal(decay.size) * decay
        h[40 + 30 * i] = 1.0  # direct path
        rirs.append(0.9 * h / np.max(np.abs(h)))
    return {
        "cuts": CutSet.from_cuts(cuts),
        "noise": recordings(tmp, "noise", [0.1 * rng.standard_normal(3 * SR),
                                           0.1 * rng.standard_normal(int(0.4 * SR))]),
        "music": recordings(tmp, "music", [music]),
        "babble": recordings(tmp, "babble",
                             [speech_like(1.5, 100 + 20 * i, 10 + i) for i in range(6)]),
        "rirs": recordings(tmp, "rir", rirs),
        "tmp": tmp,
    }


def sources(data, **only):
    out = {k: data[k] for k in ("rirs", "noise", "music", "babble")}
    out.update(only)
    return out


def cfg_only(kind: str, **extra) -> dict:
    weights = {k: 0.0 for k in DEFAULT_CONFIG["weights"]}
    weights[kind] = 1.0
    return {"weights": weights, **extra}


def roundtrip(cuts: CutSet, path: Path) -> CutSet:
    cuts.to_file(path)
    return CutSet.from_file(path)


# ----------------------------------------------------------------------------------------------
# transforms


def peak_hz(x: np.ndarray) -> float:
    n = 1 << 20  # zero-padded FFT: ~0.015 Hz bins
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size), n))
    return float(np.argmax(spec) * SR / n)


def test_speed_perturb_tone_pitch_length_and_roundtrip(tmp_path):
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(SR) / SR)
    rec = write(tmp_path / "tone.wav", tone)
    sup = SupervisionSegment(id="s", recording_id=rec.id, start=0.2, duration=0.6, text="tone")
    cut = MonoCut(id="tone", start=0.0, duration=1.0, channel=0, recording=rec,
                  supervisions=[sup])
    for factor in (1.1, 0.9):
        sp = perturb_speed(cut, factor)
        assert sp.id == f"tone_sp{factor}"
        audio = sp.load_audio()[0]
        assert abs(audio.size - SR / factor) <= 1
        assert audio.size == sp.num_samples
        assert peak_hz(audio) == pytest.approx(440 * factor, abs=1.0)
        assert sp.supervisions[0].start == pytest.approx(0.2 / factor, abs=1 / SR)
        assert sp.supervisions[0].duration == pytest.approx(0.6 / factor, abs=1 / SR)
        assert sp.supervisions[0].text == "tone"
        back = roundtrip(CutSet.from_cuts([sp]), tmp_path / f"sp{factor}.jsonl.gz")[0]
        assert isinstance(back.recording.transforms[-1], SpeedPerturb)
        np.testing.assert_array_equal(back.load_audio()[0], audio)
    assert "torchaudio" not in sys.modules


def test_speed_perturb_word_cut_inside_utterance(data):
    # A cut starting inside the utterance gives the matching part of the perturbed utterance.
    # Start 1.1 s maps to exactly 1.0 s at factor 1.1, so no sub-sample shift between the two.
    rec = data["cuts"]["utt0_001"].recording
    word = MonoCut(id="w", start=1.1, duration=0.55, channel=0, recording=rec)
    full = perturb_speed(rec.to_cut(), 1.1).load_audio()[0]
    sp = perturb_speed(word, 1.1)
    audio = sp.load_audio()[0]
    assert sp.start == pytest.approx(1.0) and sp.duration == pytest.approx(0.5)
    assert audio.size == sp.num_samples == SR // 2
    inner = slice(300, audio.size - 300)  # away from the filter's edge effects
    np.testing.assert_allclose(audio[inner], full[SR:SR + audio.size][inner], atol=1e-3)


def band_energy_db(x: np.ndarray, above: float) -> float:
    f, p = signal.welch(x, SR, nperseg=1024)
    return 10 * np.log10(p[f > above].sum() / p.sum())


def test_bandlimit_removes_energy_above_cutoff(tmp_path):
    noise = 0.3 * np.random.default_rng(1).standard_normal(SR)
    rec = write(tmp_path / "white.wav", noise)
    limited = Recording.from_dict({**rec.to_dict(), "transforms": [BandLimit(4000).to_dict()]})
    audio = limited.load_audio()[0]
    assert audio.size == noise.size
    drop = band_energy_db(noise, 4200) - band_energy_db(audio, 4200)
    assert drop > 30
    # The passband is kept (< 0.5 dB loss below 3.5 kHz).
    f, p_in = signal.welch(noise, SR, nperseg=1024)
    _, p_out = signal.welch(audio, SR, nperseg=1024)
    band = (f > 100) & (f < 3500)
    assert abs(10 * np.log10(p_out[band].sum() / p_in[band].sum())) < 0.5


def test_clip_saturates_at_the_level_below_the_peak(tmp_path):
    # A hand-worked case: peak 0.8, clipped 6.0206 dB below it -> threshold 0.4.
    x = np.array([0.0, 0.1, -0.3, 0.5, -0.8, 0.45, 0.2], dtype=np.float32)
    y = Clip(20 * np.log10(2))(x, SR)
    np.testing.assert_allclose(y, [0.0, 0.1, -0.3, 0.4, -0.4, 0.4, 0.2], atol=1e-6)
    assert y.dtype == x.dtype
    np.testing.assert_array_equal(Clip(0.0)(x, SR), x)
    np.testing.assert_array_equal(Clip(12.0)(np.zeros(5, np.float32), SR), np.zeros(5))
    # Through a Recording's transforms, as stage 4 loads it: samples above the level are flat.
    tone = speech_like(1.0, 150, 0)
    rec = write(tmp_path / "tone.wav", tone)
    clipped = Recording.from_dict({**rec.to_dict(), "transforms": [Clip(12.0).to_dict()]})
    audio = clipped.load_audio()[0]
    t = np.max(np.abs(tone)) * 10 ** (-12 / 20)
    assert audio.size == tone.size
    assert np.max(np.abs(audio)) == pytest.approx(t, rel=1e-5)
    assert np.mean(np.abs(audio) >= t * (1 - 1e-5)) > 0.05  # a clipped share, not a few samples
    low = np.abs(tone) < t
    np.testing.assert_allclose(audio[low], tone[low], atol=1e-6)
    for bad in (-1.0, 61.0):
        with pytest.raises(ValueError, match="below_peak_db"):
            Clip(bad)


def test_clipped_copies_keep_every_other_draw_and_never_reach_eval(data):
    base = augment_cuts(data["cuts"], **sources(data), cfg=FULL, seed=3, copies=6, keep_clean=False)
    cfg = {**FULL, "clip_prob": 0.5, "clip_db": [3, 15]}
    out = augment_cuts(data["cuts"], **sources(data), cfg=cfg, seed=3, copies=6, keep_clean=False)
    clipped = 0
    for b, c in zip(base, out):
        plan = dict(c.custom["aug"])
        level = plan.pop("clip", None)
        assert plan == b.custom["aug"]  # turning clipping on changes no other draw
        if level is None:
            np.testing.assert_array_equal(c.load_audio(), b.load_audio())
            continue
        clipped += 1
        assert 3 <= level <= 15
        a = c.load_audio()[0]
        ref = b.load_audio()[0]
        if plan["bandlimit"] is None:  # without the low-pass after it, the clip level is exact
            assert np.max(np.abs(a)) == pytest.approx(np.max(np.abs(ref)) * 10 ** (-level / 20), rel=1e-4)
    assert 0 < clipped < len(out)
    from pyadml.data.augment import recipe_tags
    assert any("+clip" in recipe_tags(c.custom["aug"]) for c in out)
    ev = augment_eval_cuts(data["cuts"], **sources(data), cfg={**cfg, "clip_prob": 1.0}, seed=3)
    assert not any(c.custom["aug"].get("clip") for c in ev)
    for bad in ({"clip_prob": 1.5}, {"clip_db": [10, 5]}, {"clip_db": [-1, 5]}, {"clip_db": 6}):
        with pytest.raises(ValueError, match="clip"):
            check_augment_config(bad)


def test_transforms_registered_with_lhotse():
    for cls, obj in ((SpeedPerturb, SpeedPerturb(0.9)), (BandLimit, BandLimit(3400)),
                     (Clip, Clip(9.5))):
        assert AudioTransform.KNOWN_TRANSFORMS[cls.__name__] is cls
        assert AudioTransform.from_dict(obj.to_dict()) == obj


# ----------------------------------------------------------------------------------------------
# mixing and reverberation


def measured_snr(clean: np.ndarray, mixed: np.ndarray) -> float:
    return 10 * np.log10(np.sum(clean ** 2) / np.sum((mixed - clean) ** 2))


@pytest.mark.parametrize("noise_id", ["noise0", "noise1"])  # noise1 (0.4 s) is looped
def test_noise_mixed_at_requested_snr(data, noise_id):
    noise = RecordingSet.from_recordings([data["noise"][noise_id]])
    out = augment_eval_cuts(data["cuts"], **sources(data, noise=noise),
                            cfg=cfg_only("noise"), seed=3)
    for clean, aug in zip(data["cuts"], out):
        assert aug.custom["aug"]["sources"] == [noise_id]
        assert aug.duration == pytest.approx(clean.duration)
        assert aug.num_samples == clean.num_samples
        c, m = clean.load_audio()[0], aug.load_audio()[0]
        assert m.shape == c.shape
        assert measured_snr(c, m) == pytest.approx(aug.custom["aug"]["snr"], abs=0.5)


def test_babble_per_speaker_snr(data):
    out = augment_eval_cuts(data["cuts"], **sources(data), cfg=cfg_only("babble"), seed=5)
    for clean, aug in zip(data["cuts"], out):
        rec = aug.custom["aug"]
        assert 3 <= len(rec["sources"]) <= 5 and len(rec["snr"]) == len(rec["sources"])
        # Unmixed: the speech track first, then each speaker scaled to its SNR.
        tracks = [t[0] for t in aug.load_audio(mixed=False)]
        c = clean.load_audio()[0]
        np.testing.assert_allclose(tracks[0], c, atol=1e-6)
        assert len(tracks) == 1 + len(rec["sources"])
        for track, snr in zip(tracks[1:], rec["snr"]):
            assert 10 * np.log10(np.sum(c ** 2) / np.sum(track ** 2)) == pytest.approx(snr, abs=0.1)


def test_reverb_changes_audio_keeps_length(data):
    out = augment_eval_cuts(data["cuts"], **sources(data), cfg=cfg_only("reverb"), seed=1)
    for clean, aug in zip(data["cuts"], out):
        assert aug.custom["aug"]["rir"] in data["rirs"].ids
        assert aug.duration == clean.duration
        c, r = clean.load_audio()[0], aug.load_audio()[0]
        assert r.shape == c.shape and np.all(np.isfinite(r))
        assert np.max(np.abs(r - c)) > 0.01
        # lhotse keeps the energy (normalize_output)
        assert np.sum(r ** 2) == pytest.approx(np.sum(c ** 2), rel=1e-3)
    assert "torchaudio" not in sys.modules


@pytest.mark.parametrize("bad", ["zeros", "nan"])
def test_an_all_zero_or_nan_rir_is_named_not_made_into_silent_or_nan_copies(data, tmp_path, bad,
                                                                            capsys):
    """An RIR whose first channel (the one lhotse convolves with) is all zeros made every copy
    reverberated with it digital silence, kept as a training example of its word; one with a
    NaN stopped stage 4 with 'cannot convert float NaN to integer', naming no file. Now stage 3
    names the file; the channels after the first are not used, and may be anything."""
    h = np.zeros((4000, 2), dtype=np.float32)
    h[30, 1] = 1.0  # a response in the second channel only
    if bad == "nan":
        h[30, 0], h[100, 0] = 1.0, np.nan
    path = tmp_path / "Room001-00001.wav"
    sf.write(str(path), h, SR, subtype="FLOAT")
    rirs = RecordingSet.from_recordings([Recording.from_file(path)])
    expected = (f"RIR Room001-00001 ({path}): channel 0 is all zeros, so every copy "
                f"reverberated with it would be silence" if bad == "zeros" else
                f"RIR Room001-00001 ({path}): 1 sample(s) of channel 0 are NaN or infinite "
                f"(the first at 100)")
    with pytest.raises(ValueError, match=re.escape(expected)):
        list(augment_cuts(data["cuts"], **sources(data, rirs=rirs), cfg=cfg_only("reverb"),
                          seed=1, copies=1, keep_clean=False))
    # stage 3 as run.sh calls it: the message, and no output
    cuts_path, rir = tmp_path / "cuts.jsonl.gz", tmp_path / "rir.jsonl.gz"
    data["cuts"].to_file(cuts_path)
    rirs.to_file(rir)
    out = tmp_path / "out" / "aug.jsonl.gz"
    assert cli.main(["--config", str(REPO / "egs/wsj_librikws/conf/augment.yaml"), "--cuts",
                     str(cuts_path), "--rirs", str(rir), "--out", str(out)]) == 1
    assert expected in capsys.readouterr().err
    assert not out.exists() and list(out.parent.iterdir()) == []
    # one gone since stage 1: why, in a line (lhotse's message is pages of backends' exceptions)
    path.unlink()
    with pytest.raises(ValueError, match=re.escape(
            f"RIR Room001-00001 ({path}): cannot read it ([Errno 2] No such file or directory: ")):
        list(augment_cuts(data["cuts"], **sources(data, rirs=rirs), cfg=cfg_only("reverb"),
                          seed=1, copies=1, keep_clean=False))


# ----------------------------------------------------------------------------------------------
# augment_cuts

FULL = {"reverb_and_noise_prob": 0.5, "speed_prob": 0.5, "bandlimit_prob": 0.5}


def test_augment_cuts_ids_texts_and_counts(data):
    cuts = data["cuts"]
    out = augment_cuts(cuts, **sources(data), cfg=FULL, seed=0, copies=3, keep_clean=True)
    assert len(out) == len(cuts) * 4
    ids = list(out.ids)
    assert ids[:len(cuts)] == list(cuts.ids)
    assert ids[len(cuts):] == [f"{c.id}_aug{k}" for c in cuts for k in (1, 2, 3)]
    assert len(set(ids)) == len(ids)
    sup_ids = [s.id for c in out for s in c.supervisions]
    assert len(set(sup_ids)) == len(sup_ids)
    texts = {c.id: c.supervisions[0].text for c in cuts}
    for aug in list(out)[len(cuts):]:
        base = aug.id.rsplit("_aug", 1)[0]
        assert [s.text for s in aug.supervisions] == [texts[base]]
    kinds = {c.custom["aug"]["kind"] for c in list(out)[len(cuts):]}
    assert kinds == {"reverb", "noise", "music", "babble"}
    no_clean = augment_cuts(cuts, **sources(data), cfg=FULL, seed=0, copies=2, keep_clean=False)
    assert len(no_clean) == 2 * len(cuts)


def test_augment_cuts_deterministic_and_seed_dependent(data):
    def run(seed):
        return augment_cuts(data["cuts"], **sources(data), cfg=FULL, seed=seed, copies=2,
                            keep_clean=True).to_dicts()

    assert list(run(7)) == list(run(7))
    assert list(run(7)) != list(run(8))
    # A lazy input gives the same cuts, lazily.
    path = data["tmp"] / "clean.jsonl.gz"
    data["cuts"].to_file(path)
    lazy = augment_cuts(CutSet.from_jsonl_lazy(path), **sources(data), cfg=FULL, seed=7,
                        copies=2, keep_clean=True)
    assert lazy.is_lazy
    assert list(lazy.to_dicts()) == list(run(7))


def test_augment_cuts_roundtrip_loads_identical_audio(data, tmp_path):
    out = augment_cuts(data["cuts"], **sources(data), cfg=FULL, seed=2, copies=3,
                       keep_clean=False)
    back = roundtrip(out, tmp_path / "aug.jsonl.gz")
    assert list(back.to_dicts()) == list(out.to_dicts())
    for a, b in zip(out, back):
        x, y = a.load_audio(), b.load_audio()
        assert x.shape == (1, a.num_samples) and np.all(np.isfinite(x))
        np.testing.assert_array_equal(x, y)
        if a.custom["aug"]["speed"] is None:
            assert a.num_samples == data["cuts"][a.id.rsplit("_aug", 1)[0]].num_samples
    assert "torchaudio" not in sys.modules


def test_drawn_values_stay_in_configured_ranges(data):
    cfg = check_augment_config(FULL)
    out = augment_cuts(data["cuts"], **sources(data), cfg=cfg, seed=4, copies=8,
                       keep_clean=False)
    seen = set()
    for cut in out:
        aug = cut.custom["aug"]
        seen.add(aug["kind"])
        if aug["kind"] == "reverb":
            assert aug["rir"] in data["rirs"].ids and aug["snr"] is None
            continue
        lo, hi = cfg["snr"][aug["kind"]]
        snrs = aug["snr"] if aug["kind"] == "babble" else [aug["snr"]]
        assert all(lo <= s <= hi for s in snrs)
        assert all(s in data[aug["kind"]].ids for s in aug["sources"])
        if aug["kind"] == "babble":
            assert cfg["babble_speakers"][0] <= len(aug["sources"]) <= cfg["babble_speakers"][1]
        if aug["speed"] is not None:
            assert aug["speed"] in cfg["speed_factors"]
    assert seen == {"reverb", "noise", "music", "babble"}


def test_missing_sources_disable_kinds(data):
    out = augment_eval_cuts(data["cuts"], rirs=None, noise=data["noise"], music=None,
                            babble=None, cfg={}, seed=0)
    assert {c.custom["aug"]["kind"] for c in out} == {"noise"}
    with pytest.raises(ValueError, match="no augmentation kind"):
        augment_eval_cuts(data["cuts"], rirs=None, noise=None, music=None, babble=None,
                          cfg={}, seed=0)


# ----------------------------------------------------------------------------------------------
# configuration and CLI


def test_config_file_and_unknown_keys(tmp_path):
    cfg = load_augment_config(REPO / "egs/wsj_librikws/conf/augment.yaml")
    assert cfg["snr"] == {"noise": [0.0, 15.0], "music": [5.0, 15.0], "babble": [13.0, 20.0]}
    assert cfg["babble_speakers"] == [3, 5] and cfg["copies"] == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("copies: 2\nsnr_noise: [0, 15]\n")
    with pytest.raises(ValueError, match="snr_noise"):
        load_augment_config(bad)
    bad.write_text("weights: {reverb: 1, hiss: 1}\n")
    with pytest.raises(ValueError, match="weights.hiss"):
        load_augment_config(bad)
    with pytest.raises(ValueError, match="speed_prob"):
        check_augment_config({"speed_prob": 1.5})
    with pytest.raises(ValueError, match="snr.music"):
        check_augment_config({"snr": {"music": [15, 5]}})


def test_cli_writes_augmented_manifest(data, tmp_path, capsys):
    cuts_path = tmp_path / "cuts.jsonl.gz"
    data["cuts"].to_file(cuts_path)
    musan = tmp_path / "manifests"
    musan.mkdir()
    data["noise"].to_file(musan / "musan_recordings_noise.jsonl.gz")
    data["babble"].to_file(musan / "musan_recordings_speech.jsonl.gz")
    rir = tmp_path / "rir.jsonl.gz"
    data["rirs"].to_file(rir)
    out = tmp_path / "out" / "aug.jsonl.gz"
    args = ["--config", str(REPO / "egs/wsj_librikws/conf/augment.yaml"), "--cuts",
            str(cuts_path), "--noise", str(musan / "musan_recordings_noise.jsonl.gz"),
            "--music", str(musan / "musan_recordings_music.jsonl.gz"),
            "--babble", str(musan / "musan_recordings_speech.jsonl.gz"), "--rirs", str(rir),
            "--out", str(out), "--copies", "2"]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "musan_recordings_music.jsonl.gz not found" in printed
    assert f"{3 * len(data['cuts'])} cuts" in printed and "clean=5" in printed
    written = CutSet.from_file(out)
    assert len(written) == 3 * len(data["cuts"])
    assert "music" not in {c.custom["aug"]["kind"] for c in written if "aug" in (c.custom or {})}
    assert sorted(p.name for p in out.parent.iterdir()) == ["aug.jsonl.gz"]  # no temp left
    assert cli.main(args[:-2] + ["--eval"]) == 0
    assert len(CutSet.from_file(out)) == len(data["cuts"])


def test_eval_copies_never_get_training_only_options(data):
    # The WSJ test condition is reverberation and noise only, whatever the training options.
    cfg = dict(DEFAULT_CONFIG, **FULL)
    out = augment_eval_cuts(data["cuts"], **sources(data), cfg=cfg, seed=3)
    for cut in out:
        assert cut.custom["aug"]["speed"] is None and cut.custom["aug"]["bandlimit"] is None
    train = augment_cuts(data["cuts"], **sources(data), cfg=cfg, seed=3, copies=4, keep_clean=False)
    assert any(c.custom["aug"]["bandlimit"] is not None for c in train)


def test_a_fresh_process_reads_speed_perturbed_manifests_through_the_dataset(data, tmp_path):
    import subprocess
    import sys

    perturbed = CutSet.from_cuts([perturb_speed(c, 1.1) for c in data["cuts"]])
    perturbed.to_file(tmp_path / "sp.jsonl.gz")
    code = ("import pyadml.data.dataset\nfrom lhotse import CutSet\n"
            f"c = CutSet.from_file({str(tmp_path / 'sp.jsonl.gz')!r}).to_eager()\n"
            "print(len(c), c[0].load_audio().shape)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]


# ----------------------------------------------------------------------------------------------
# leading and trailing context (inputs as users record them)


def db(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.asarray(x, dtype=np.float64) ** 2) + 1e-20)


@pytest.mark.parametrize("kind", ["reverb", "noise"])
def test_context_pads_both_sides_with_noise_at_the_drawn_level(data, kind):
    ctx = {"prob": 1.0, "max": 1.0, "snr": [30.0, 30.0]}
    plain = augment_cuts(data["cuts"], **sources(data), cfg=cfg_only(kind), seed=3, copies=1,
                         keep_clean=False)
    padded = augment_cuts(data["cuts"], **sources(data), cfg=cfg_only(kind, context=ctx), seed=3,
                          copies=1, keep_clean=False)
    leads = []
    for p, c in zip(plain, padded):
        plan = c.custom["aug"]
        lead, trail = plan["context"]["pad"]
        leads.append(lead)
        assert 0.0 <= lead <= 1.0 and 0.0 <= trail <= 1.0
        # Everything else drawn for the copy is unchanged by the context.
        assert {k: v for k, v in plan.items() if k not in ("context", "offsets")} == \
            {k: v for k, v in p.custom["aug"].items() if k != "offsets"}
        assert c.id == p.id and c.duration == pytest.approx(p.duration + lead + trail, abs=2e-4)
        sup = c.supervisions[0]
        assert sup.start == pytest.approx(p.supervisions[0].start + lead, abs=2e-4)
        assert sup.duration == pytest.approx(p.supervisions[0].duration)
        x = c.load_audio()[0]
        n_lead, n_word = int(lead * SR), p.num_samples
        assert x.size == c.num_samples
        before, after = x[:max(0, n_lead - 80)], x[n_lead + n_word + 80:]
        if kind == "reverb":
            # Room noise 30 dB below the speech track, and never digital silence.
            speech = p.load_audio()[0]
            for part in (before, after):
                if part.size > SR // 20:
                    assert db(speech) - db(part) == pytest.approx(30.0, abs=2.0)
            # The word itself is the speech plus that low noise.
            assert db(x[n_lead:n_lead + n_word] - speech) == pytest.approx(db(speech) - 30, abs=2.0)
        else:
            # The copy's own noise runs on through the context at the copy's SNR.
            assert plan["context"]["source"] and plan["snr"] is not None
            if before.size > SR // 20:
                clean = data["cuts"][c.id.rsplit("_aug", 1)[0]].load_audio()[0]
                assert db(clean) - db(before) == pytest.approx(plan["snr"], abs=2.0)
    assert len(set(leads)) > 1  # drawn per copy


def test_context_probability_and_eval_copies(data):
    cfg = cfg_only("reverb", context={"prob": 0.5, "max": 0.5, "snr": [20, 40]})
    train = augment_cuts(data["cuts"], **sources(data), cfg=cfg, seed=3, copies=8, keep_clean=True)
    with_ctx = [c for c in train if (c.custom or {}).get("aug", {}).get("context")]
    assert 0 < len(with_ctx) < 40
    for c in with_ctx:
        assert all(0 <= t <= 0.5 for t in c.custom["aug"]["context"]["pad"])
        assert 20 <= c.custom["aug"]["context"]["snr"] <= 40
    assert not any((c.custom or {}).get("aug") for c in list(train)[:5])  # clean cuts untouched
    out = augment_eval_cuts(data["cuts"], **sources(data), cfg={**cfg, "context": {"prob": 1.0}}, seed=3)
    assert not any(c.custom["aug"].get("context") for c in out)
    # No noise recordings: no context (never digital silence).
    none = augment_cuts(data["cuts"], **sources(data, noise=None), cfg=cfg, seed=3, copies=4,
                        keep_clean=False)
    assert not any(c.custom["aug"].get("context") for c in none)
    with pytest.raises(ValueError, match="context"):
        check_augment_config({"context": {"prob": 2.0}})
    with pytest.raises(ValueError, match="context"):
        check_augment_config({"context": {"bogus": 1}})


def test_dataset_crops_context_to_the_batch_and_keeps_the_word():
    from types import SimpleNamespace

    from pyadml.data.dataset import KeywordDataset, context_frames

    def cut(cid, lead, trail):
        ctx = {"pad": [lead, trail]} if lead or trail else None
        return SimpleNamespace(id=cid, custom={"aug": {"context": ctx}} if ctx else {})

    # Word cores of 50 and 80 frames; the first has 0.9 s + 0.6 s of context.
    cuts = [cut("a", 0.9, 0.6), cut("b", 0.0, 0.0)]
    feats = [np.arange(50 + 150, dtype=np.float32)[:, None] * np.ones((1, 4), np.float32),
             np.zeros((80, 4), np.float32)]
    assert context_frames(cuts[0], 200) == (90, 60)
    ds = KeywordDataset([], tokenizer=None, context_growth=0.0, seed=1)
    out = ds.crop_context(cuts, feats)
    assert out[1] is feats[1]
    assert len(out[0]) == 80  # the batch's longest core
    kept = out[0][:, 0]
    assert kept[0] <= 90 and kept[-1] >= 139  # the word (frames 90..139) is whole
    assert np.all(np.diff(kept) == 1)
    # The same batch gives the same crop; other batches differ.
    assert np.array_equal(ds.crop_context(cuts, feats)[0], out[0])
    starts = {int(ds.crop_context([cut(f"a{i}", 0.9, 0.6), cuts[1]], feats)[0][0, 0]) for i in range(20)}
    assert len(starts) > 3
    # Growth allows longer rows; None keeps everything.
    grown = KeywordDataset([], tokenizer=None, context_growth=0.5).crop_context(cuts, feats)
    assert len(grown[0]) == 130


def test_augmented_manifests_get_the_umask_s_mode_like_every_other_file(data, tmp_path):
    """Stage 3's augmented sets (data/cuts/<train>_aug.jsonl.gz, <test>_aug.jsonl.gz) were
    written through a mkstemp of their own and kept its mode 0600, while every other manifest
    has the umask's (0644 under 022): in a data/ shared by a group, the other users' training
    (stage 6 from this data/) could not read the training set. Now they are written as the other
    manifests are, and a full disk is named as there."""
    import os
    import stat

    from pyadml.data.augment import write_augmented

    old = os.umask(0o022)
    try:
        out = tmp_path / "cuts" / "train_aug.jsonl.gz"
        assert write_augmented(iter(data["cuts"]), out)[0] == len(data["cuts"])
        assert stat.S_IMODE(out.stat().st_mode) == 0o644
        os.umask(0o027)
        write_augmented(iter(data["cuts"]), out)
        assert stat.S_IMODE(out.stat().st_mode) == 0o640
    finally:
        os.umask(old)
    assert len(CutSet.from_file(out)) == len(data["cuts"])
    assert [p.name for p in out.parent.iterdir()] == ["train_aug.jsonl.gz"]


def test_an_augmented_manifest_a_full_disk_cuts_off_is_named(data, tmp_path, disk_full):
    from pyadml.data.augment import write_augmented
    from pyadml.fileio import DiskFull

    out = tmp_path / "cuts" / "train_aug.jsonl.gz"
    out.parent.mkdir()
    disk_full(out.parent, after=100)
    with pytest.raises(DiskFull, match=rf"^{out}: cannot write it: no space left on the device"):
        write_augmented(iter(data["cuts"]), out)
    assert list(out.parent.iterdir()) == []
