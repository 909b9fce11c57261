"""The level-relative floor on the log-mel features (pyadml.score.floor): a hand-worked example,
and the property it is for: a recording scaled by a gain scores as the original does."""

import json
import math

import numpy as np
import pytest
import soundfile as sf

from pyadml.bin import score_clips as cli
from pyadml.data.features import fbank_extractor
from pyadml.score.floor import (CLIP_FLOOR_DB, NO_FLOOR, FloorError, check_floor_db, check_floor_option,
                                 floor_features, floor_option, model_floor_db)
from pyadml.score.pairs import features_for

from test_score import tiny_model_file


def test_values_below_the_floor_are_raised_to_it():
    feats = np.array([[0.0, -1.0], [-5.0, -9.0], [-2.0, 0.5]], np.float32)
    # 10 dB = ln(10) nats below the maximum 0.5: the floor is 0.5 - 2.302585 = -1.802585.
    want = np.array([[0.0, -1.0], [-1.802585, -1.802585], [-1.802585, 0.5]], np.float32)
    np.testing.assert_allclose(floor_features(feats, 10.0), want, atol=1e-6)
    assert floor_features(feats, None) is feats
    # A floor far below every value changes nothing.
    np.testing.assert_array_equal(floor_features(feats, 200.0), feats)


@pytest.mark.parametrize("bad", [0, -3, math.nan, math.inf, "50"])
def test_a_floor_that_is_not_a_positive_number_is_refused(bad):
    with pytest.raises(FloorError, match="--floor-db must be a positive number"):
        check_floor_db(bad)


def recording(gain, rate=16000):
    """A tone burst with room-like noise 60 dB under it on one side and digital silence on the
    other (as synthetic audio has), scaled by ``gain``."""
    rng = np.random.default_rng(0)
    t = np.arange(int(0.4 * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) * np.hanning(t.size)
    noise = 3e-4 * rng.standard_normal(int(0.3 * rate))
    return gain * np.concatenate([noise, tone, np.zeros(int(0.3 * rate))])


def test_with_the_floor_the_features_do_not_depend_on_the_level(tmp_path):
    extractor = fbank_extractor({"num_mel_bins": 40})
    paths = {}
    for gain in (1.0, 0.1):
        paths[gain] = tmp_path / f"g{gain}.wav"
        sf.write(paths[gain], recording(gain).astype(np.float32), 16000, subtype="FLOAT")

    def feats(gain, floor_db):
        return features_for(paths[gain], extractor, 16000, True, floor_db=floor_db)

    # Without the floor the silence sits on fbank's absolute floor (ln eps) whatever the gain,
    # so the quieter copy's normalised features differ.
    assert np.abs(feats(1.0, None) - feats(0.1, None)).max() > 0.5
    np.testing.assert_allclose(feats(1.0, 50.0), feats(0.1, 50.0), atol=1e-3)


def level_clips(tmp_path):
    """clips.tsv: two keywords' clips, each at gains 1 and 0.1."""
    (tmp_path / "audio").mkdir()
    lines = []
    for gain in (1.0, 0.1):
        for i, kw in enumerate(["alexa", "computer"]):
            x = recording(gain) * (1.0 + 0.3 * i)
            sf.write(tmp_path / "audio" / f"{kw}_{gain}.wav", x.astype(np.float32), 16000, subtype="FLOAT")
            lines.append(f"audio/{kw}_{gain}.wav\t{kw}")
    (tmp_path / "clips.tsv").write_text("\n".join(lines) + "\n")
    return tmp_path / "clips.tsv"


def clip_scores(model, clips, out, *opts):
    """score_clips' scores as (gain, clip, keyword)."""
    assert cli.main(["--model", str(model), "--clips", str(clips), "--out-dir", str(out), *opts]) == 0
    rows = [r.split("\t") for r in (out / "scores.tsv").read_text().splitlines()]
    return np.array([float(r[3]) for r in rows]).reshape(2, 2, 2)


def test_score_clips_floor_db_scores_a_quieter_copy_as_the_original(tmp_path, capsys):
    model = tiny_model_file(tmp_path / "final.pt")
    clips = level_clips(tmp_path)

    def scores(*opts):
        return clip_scores(model, clips, tmp_path / ("out" + "".join(opts)), *opts)

    plain = scores("--floor-db", "none")
    assert np.abs(plain[0] - plain[1]).max() > 1e-2
    floored = scores("--floor-db", "50")
    np.testing.assert_allclose(floored[0], floored[1], atol=1e-4)
    # A user's recordings get the 50 dB floor unless they say otherwise, and metrics.json says so.
    np.testing.assert_array_equal(scores(), floored)
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["floor_db"] == 50.0
    assert json.loads((tmp_path / "out--floor-dbnone" / "metrics.json").read_text())["floor_db"] is None
    assert cli.main(["--model", str(model), "--clips", str(tmp_path / "clips.tsv"),
                     "--floor-db", "0"]) == 1
    assert "--floor-db must be a positive number" in capsys.readouterr().err


def test_a_model_trained_with_a_floor_is_scored_with_it(tmp_path, capsys):
    """final.pt's features carry training's floor_db (pyadml.train.experiment): scoring applies
    it unless --floor-db says otherwise, so the model sees the front end it was trained on."""
    plain = tiny_model_file(tmp_path / "plain.pt")
    trained = tiny_model_file(tmp_path / "floored.pt", floor_db=50.0)  # the same weights
    clips = level_clips(tmp_path)
    want = clip_scores(plain, clips, tmp_path / "a", "--floor-db", "50")
    got = clip_scores(trained, clips, tmp_path / "b")
    np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_allclose(got[0], got[1], atol=1e-4)  # level-free, as the floor makes it
    np.testing.assert_allclose(clip_scores(trained, clips, tmp_path / "c", "--floor-db", "30"),
                               clip_scores(plain, clips, tmp_path / "d", "--floor-db", "30"), atol=1e-6)
    assert np.abs(got - clip_scores(plain, clips, tmp_path / "e", "--floor-db", "none")).max() > 1e-3
    # The model's own floor comes before score_clips' default of 50 dB.
    trained30 = tiny_model_file(tmp_path / "floored30.pt", floor_db=30.0)
    np.testing.assert_allclose(clip_scores(trained30, clips, tmp_path / "f"),
                               clip_scores(plain, clips, tmp_path / "g", "--floor-db", "30"), atol=1e-6)
    bad = tiny_model_file(tmp_path / "bad.pt", floor_db=-5.0)
    assert cli.main(["--model", str(bad), "--clips", str(clips)]) == 1
    assert "the model's features floor_db must be a positive number" in capsys.readouterr().err


def test_which_floor_a_model_is_scored_with():
    """The option, else the model's training floor, else the command's default; 'none': none."""
    assert model_floor_db({}, None, CLIP_FLOOR_DB) == 50.0
    assert model_floor_db({}, None) is None  # the recipe's test sets and the spotter
    assert model_floor_db({"floor_db": 30}, None, CLIP_FLOOR_DB) == 30.0
    assert model_floor_db({"floor_db": 30}, 40, CLIP_FLOOR_DB) == 40.0
    assert model_floor_db({"floor_db": 30}, NO_FLOOR, CLIP_FLOOR_DB) is None
    assert floor_option(" None ") == NO_FLOOR and floor_option("45") == 45.0
    assert check_floor_option(NO_FLOOR) == NO_FLOOR  # a scoring option only:
    with pytest.raises(FloorError, match="floor_db must be a positive number"):
        check_floor_db(NO_FLOOR, "floor_db")  # a training config's floor is off unless given
    with pytest.raises(Exception, match="expected a number of dB or 'none', got 'x'"):
        floor_option("x")
    with pytest.raises(FloorError, match="the default floor must be a positive number"):
        model_floor_db({}, None, -1.0)


def test_score_pairs_floors_a_users_recordings_by_default_and_says_so(tmp_path, capsys):
    from pyadml.bin import score_pairs

    model = tiny_model_file(tmp_path / "final.pt")
    clips = level_clips(tmp_path)
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"{tmp_path / line.split(chr(9))[0]}\talexa\n"
                             for line in clips.read_text().splitlines()))

    def scores(name, *opts):
        assert score_pairs.main(["--model", str(model), "--pairs", str(pairs),
                                 "--out", str(tmp_path / name), *opts]) == 0
        return [float(r.split("\t")[-1]) for r in (tmp_path / name).read_text().splitlines()]

    default = scores("default.tsv")
    assert "features floored 50 dB below each file's loudest" in capsys.readouterr().out
    assert default == scores("fifty.tsv", "--floor-db", "50")
    assert default[:2] == pytest.approx(default[2:], abs=1e-4)  # gains 1 and 0.1 alike
    plain = scores("none.tsv", "--floor-db", "none")
    assert "no level-relative floor" in capsys.readouterr().out
    assert max(abs(a - b) for a, b in zip(plain[:2], plain[2:])) > 1e-2
