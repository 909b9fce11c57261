"""pyadml.synth.rooms: RIRS_NOISES-like simulated RIRs must load through lhotse's prepare_rir_noise."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lhotse.recipes import prepare_rir_noise

from pyadml.synth.rooms import make_rirs_like

SR = 16000
ROOMS, RIRS = 2, 2
TYPES = ("smallroom", "mediumroom", "largeroom")


@pytest.fixture(scope="module")
def rirs(tmp_path_factory):
    out = tmp_path_factory.mktemp("RIRS_NOISES")
    return out, make_rirs_like(out, rooms_per_type=ROOMS, rirs_per_room=RIRS, seed=11)


def file_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def expected_names(room_type: str) -> list[str]:
    return [f"{room_type}/Room{r:03d}/Room{r:03d}-{m:05d}.wav"
            for r in range(1, ROOMS + 1) for m in range(1, RIRS + 1)]


def test_layout_lists_and_return_value(rirs):
    out, summary = rirs
    assert summary["rirs"] == len(TYPES) * ROOMS * RIRS
    assert summary["rooms"] == len(TYPES) * ROOMS
    assert (out / "README").is_file() and (out / "simulated_rirs" / "README").is_file()
    sim = out / "simulated_rirs"
    for room_type in TYPES:
        assert summary[room_type] == ROOMS * RIRS
        wavs = sorted(str(p.relative_to(sim)) for p in (sim / room_type).rglob("*.wav"))
        assert wavs == expected_names(room_type)
        lines = (sim / room_type / "rir_list").read_text().splitlines()
        assert lines[0] == (f"--rir-id {room_type}-Room001-00001 --room-id {room_type}-Room001 "
                            f"simulated_rirs/{room_type}/Room001/Room001-00001.wav")
        assert len(lines) == ROOMS * RIRS
        assert all((out / line.split()[-1]).is_file() for line in lines)
        info = (sim / room_type / "room_info").read_text().splitlines()
        assert [line.split()[0] for line in info] == [f"{room_type}-Room{r:03d}" for r in range(1, ROOMS + 1)]
        assert all(len(line.split()) == 7 for line in info)


def test_lhotse_prepare_rir_noise_accepts_it(rirs):
    out, _ = rirs
    recordings = prepare_rir_noise(out, parts=("sim_rir",))["sim_rir"]["recordings"]
    assert len(recordings) == len(TYPES) * ROOMS * RIRS
    assert {"small-Room001-00001", "medium-Room002-00001", "large-Room002-00002"} <= set(recordings.ids)
    assert all(r.sampling_rate == SR and r.num_channels == 1 for r in recordings)


def test_rirs_look_like_rirs(rirs):
    out, _ = rirs
    for wav in sorted(out.rglob("*.wav")):
        h, sr = sf.read(wav, dtype="float64")
        assert sr == SR and sf.info(wav).subtype == "PCM_16"
        assert np.all(np.isfinite(h))
        assert 0.99 <= np.max(np.abs(h)) <= 1.0
        assert h.size <= SR  # max_rir_seconds defaults to 1 s
        assert np.argmax(np.abs(h)) < 0.2 * SR, wav  # direct path first
        fifth = h.size // 5
        first, last = np.sum(h[:fifth] ** 2), np.sum(h[-fifth:] ** 2)
        assert last < first * 10 ** (-25 / 10), wav  # decayed by more than 25 dB


def test_same_seed_is_byte_identical_other_seed_differs(rirs, tmp_path):
    out, _ = rirs
    make_rirs_like(tmp_path / "again", rooms_per_type=ROOMS, rirs_per_room=RIRS, seed=11)
    assert file_bytes(tmp_path / "again") == file_bytes(out)

    make_rirs_like(tmp_path / "other", rooms_per_type=ROOMS, rirs_per_room=RIRS, seed=12)
    first, other = file_bytes(out), file_bytes(tmp_path / "other")
    for name in first:
        if name.endswith(".wav"):
            assert first[name] != other[name], name


def test_max_rir_seconds_and_rerun_with_fewer_rirs(tmp_path):
    make_rirs_like(tmp_path, rooms_per_type=2, rirs_per_room=2, seed=0, max_rir_seconds=0.25)
    summary = make_rirs_like(tmp_path, rooms_per_type=1, rirs_per_room=1, seed=0, max_rir_seconds=0.25)
    assert summary["rirs"] == 3
    recordings = prepare_rir_noise(tmp_path, parts=("sim_rir",))["sim_rir"]["recordings"]
    assert sorted(recordings.ids) == ["large-Room001-00001", "medium-Room001-00001", "small-Room001-00001"]
    assert all(r.num_samples <= 0.25 * SR for r in recordings)
    assert not (tmp_path / "simulated_rirs" / "smallroom" / "Room002").exists()
