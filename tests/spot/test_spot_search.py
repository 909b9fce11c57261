"""The search over long audio: detections at known insertion times, refractory time, short
audio, and streaming == offline for chunks of any size."""

import numpy as np
import pytest
from conftest import RATE, ToneBackend, chirp_burst, insert, speechlike, tiny_model_file

from pyadml.spot import Detection, KeywordSpotter, SpotError
from pyadml.spot.spotter import window_grid


def tone_spotter(**opts):
    sp = KeywordSpotter(ToneBackend(), threshold=opts.pop("threshold", 0.6), **opts)
    sp.enroll(["computer"])
    return sp


def background(seconds, seed=0):
    return (0.003 * np.random.default_rng(seed).standard_normal(int(seconds * RATE))).astype(np.float32)


def test_window_length_follows_the_phone_count():
    sp = tone_spotter(window_scale=1.0)
    # computer: 8 phones -> 0.275 + 0.054 * 8 = 0.707 s -> 71 frames -> grid 76
    assert sp.expected_duration("computer") == pytest.approx(0.275 + 0.054 * 8)
    assert sp.window_frames("computer") == window_grid(71) == 76
    # The default scale, 1.5: 106 frames -> grid round(16 * 2^(11/4)) = 108
    assert tone_spotter().window_frames("computer") == window_grid(106) == 108
    assert sp.window_frames("yes") < sp.window_frames("computer") < sp.window_frames("turn on the light please")
    grid = sorted({window_grid(n) for n in range(10, 400)})
    assert all(1.15 < b / a < 1.25 for a, b in zip(grid, grid[1:]))


def test_detections_at_the_insertion_times():
    sp = tone_spotter()
    burst = chirp_burst(sp.window_frames("computer"))
    times = [1.0, 3.53, 7.26, 11.0]
    dets = sp.detect((insert(background(14), burst, times), RATE))
    assert [d.keyword for d in dets] == ["computer"] * 4
    for d, t0 in zip(dets, times):
        assert abs(d.start - t0) <= 0.05 + 1e-6  # half the 100 ms hop
        assert d.end - d.start == pytest.approx(1.08)
        assert d.score >= 0.6
    assert sp.detect((background(14), RATE)) == []  # nothing fires on noise


def test_a_detection_unpacks_as_the_readme_shows():
    """README: sp.detect(...) gives [(keyword, start, end, score), ...]; a Detection could not
    be unpacked so (TypeError: cannot unpack non-iterable Detection object)."""
    sp = tone_spotter()
    x = insert(background(4), chirp_burst(sp.window_frames("computer")), [1.0])
    (d,) = sp.detect((x, RATE))
    keyword, start, end, score = d
    assert (keyword, start, end, score) == (d.keyword, d.start, d.end, d.score)
    assert (keyword, start) == ("computer", 1.0) and score >= 0.6


def test_refractory_time_and_non_maximum_suppression():
    burst_frames = tone_spotter().window_frames("computer")
    x = insert(background(6), chirp_burst(burst_frames), [1.0, 2.0])
    assert len(tone_spotter(refractory=0.5).detect((x, RATE))) == 2
    # The second occurrence starts 1.0 s after the first: inside a 1.5 s refractory time.
    assert [d.start for d in tone_spotter(refractory=1.5).detect((x, RATE))] == [1.0]
    # The default refractory time is the keyword's window (1.08 s): 1.0 s apart fires once,
    # 1.1 s apart twice.
    assert tone_spotter().refractory_of("computer") == pytest.approx(1.08)
    assert [d.start for d in tone_spotter().detect((x, RATE))] == [1.0]
    x2 = insert(background(6), chirp_burst(burst_frames), [1.0, 2.1])
    assert [d.start for d in tone_spotter().detect((x2, RATE))] == [1.0, 2.1]
    # One occurrence scores above threshold at several neighbouring positions, fires once.
    assert len(tone_spotter(threshold=0.2, refractory=0.0).detect((x[: 2 * RATE], RATE))) == 1


def test_threshold_per_keyword():
    sp = tone_spotter()
    sp.enroll(["alexa"], threshold=0.99)
    x = insert(background(4), chirp_burst(sp.window_frames("computer")), [1.0])
    assert {d.keyword for d in sp.detect((x, RATE))} == {"computer"}
    assert sp.detect((x, RATE), threshold={"computer": 0.99}) == []
    with pytest.raises(SpotError, match="not enrolled"):
        sp.detect((x, RATE), threshold={"jarvis": 0.5})


def test_enroll_thresholds_for_keywords_it_does_not_have_are_refused():
    """enroll(..., threshold={'Computer': 0.99}) left 'computer' at the default, silently,
    where detect refuses such a key."""
    sp = tone_spotter()
    x = insert(background(4), chirp_burst(sp.window_frames("computer")), [1.0])
    with pytest.raises(SpotError, match=r"threshold given for keyword\(s\) not enrolled: "
                                        r"\['Computer'\] \(keywords: \['computer', 'alexa'\]\)"):
        sp.enroll(["alexa"], threshold={"Computer": 0.99, "alexa": 0.5})
    assert sp.keywords == ["computer"]  # nothing of the refused call was enrolled
    assert [d.keyword for d in sp.detect((x, RATE))] == ["computer"]
    # A key naming a keyword enrolled before sets its threshold, as detect's mapping would.
    sp.enroll(["alexa"], threshold={"computer": 0.99, "alexa": 0.98})
    assert sp.thresholds == {"computer": 0.99, "alexa": 0.98}
    assert sp.detect((x, RATE)) == []  # the chirp scores about 0.9 for every keyword here


def test_one_keyword_written_two_ways_is_refused_not_enrolled_twice():
    """enroll(['computer', 'Computer']) made two keywords of one query, and every detection
    came twice; so did 'computer!' enrolled after 'computer'."""
    sp = tone_spotter()
    x = insert(background(4), chirp_burst(sp.window_frames("computer")), [1.0])
    for more in (["alexa", "Computer"], ["computer!"], "alexa, COMPUTER"):
        with pytest.raises(SpotError, match=r"keywords 'computer' and '(Computer|computer!|COMPUTER)' "
                                            r"are the same words \('computer'\)"):
            sp.enroll(more)
    assert sp.keywords == ["computer"]  # nothing of a refused call was enrolled
    sp.enroll(["computer", "alexa"])  # the same text again is the same keyword
    assert sp.keywords == ["computer", "alexa"]
    assert [d.keyword for d in sp.detect((x, RATE))].count("computer") == 1


def _stream_sorted(sp, x, sizes, threshold=None):
    chunks, i = [], 0
    for s in sizes:
        chunks.append(x[i : i + s])
        i += s
        if i >= x.size:
            break
    chunks.append(x[i:])
    return sorted(sp.stream(iter(chunks), threshold=threshold), key=lambda d: (d.start, d.keyword))


def _same(a, b, tol):
    assert [(d.keyword, d.start, d.end) for d in a] == [(d.keyword, d.start, d.end) for d in b]
    assert all(abs(p.score - q.score) <= tol for p, q in zip(a, b))


@pytest.mark.parametrize("sizes", ["100ms", "random", "tiny"])
def test_streaming_equals_offline_tone(sizes):
    sp = tone_spotter()
    x = insert(background(9, seed=1), chirp_burst(sp.window_frames("computer")), [0.5, 2.93, 6.0])
    rng = np.random.default_rng(0)
    chunking = {"100ms": [1600] * 200, "random": list(rng.integers(1, 5000, 400)),
                "tiny": list(rng.integers(1, 40, 20000))}[sizes]
    offline = sp.detect((x, RATE))
    assert len(offline) == 3
    _same(_stream_sorted(sp, x, chunking), offline, 0.0)


def test_streaming_equals_offline_real_encoder(tiny_model):
    sp = KeywordSpotter.load(tiny_model, num_threads=1, threshold=-1.0, refractory=0.3)
    sp.enroll(["computer", "yes", "turn on the light"])
    x = speechlike(12, seed=3)
    # A threshold at the upper quartile of the peaks, so several detections are tested.
    peaks = sp.detect((x, RATE))
    # Midway between two peak scores: a threshold equal to a score would make the test hinge
    # on float noise between batchings (~1e-7).
    ranked = sorted(d.score for d in peaks)
    k = int(0.75 * len(ranked))
    thr = (ranked[k - 1] + ranked[k]) / 2
    offline = sp.detect((x, RATE), threshold=thr)
    assert 2 <= len(offline) < len(peaks)
    sizes = list(np.random.default_rng(1).integers(1, 4000, 400))
    _same(_stream_sorted(sp, x, sizes, thr), offline, 1e-5)
    _same(sorted(sp.stream([x[i : i + 1600] for i in range(0, x.size, 1600)], threshold=thr),
                 key=lambda d: (d.start, d.keyword)), offline, 1e-5)


@pytest.mark.parametrize("sr", [48000, 44100, 8000])
def test_streaming_at_another_rate_equals_offline(sr):
    """A 48 / 44.1 / 8 kHz stream in chunks of any size: the detections (times and scores) of
    the whole file at that rate. Resampling each chunk alone dipped the level at every chunk
    edge and rounded each chunk's length up (timestamps drifted)."""
    from scipy.signal import resample_poly

    sp = tone_spotter()
    x16 = insert(background(9, seed=1), chirp_burst(sp.window_frames("computer")), [0.5, 2.93, 6.0])
    g = np.gcd(sr, RATE)
    x = resample_poly(x16, sr // g, RATE // g).astype(np.float32)
    offline = sp.detect((x, sr))
    assert [d.start for d in offline] == [0.5, 2.9, 6.0]
    rng = np.random.default_rng(sr)
    for sizes in ([1024] * 2000, list(rng.integers(1, 3000, 2000))):
        chunks, i = [], 0
        for n in sizes:
            chunks.append((x[i : i + n], sr))
            i += n
        _same(sorted(sp.stream(iter(chunks)), key=lambda d: (d.start, d.keyword)), offline, 1e-4)


@pytest.mark.parametrize("opts,rate", [({}, RATE), ({"scan_step": 2, "margin": 0.05}, RATE),
                                       ({}, 44100)])
def test_replay_stream_is_the_stream_with_batched_windows(tiny_model, opts, rate):
    """replay_stream (stage 9's search) returns what stream yields chunk by chunk: the same
    detections in the same order, each with the stream's emission time, every peak included
    (threshold -1, no refractory time), while embedding windows in batches, not one per chunk."""
    from scipy.signal import resample_poly

    sp = KeywordSpotter.load(tiny_model, num_threads=1, threshold=-1.0, refractory=0.0, **opts)
    sp.enroll(["computer", "yes", "turn on the light"])
    x = speechlike(10, seed=5)
    if rate != RATE:
        x = resample_poly(x, 441, 160).astype(np.float32)
    sizes = list(np.random.default_rng(2).integers(1, 5000, 400))
    chunks, i = [], 0
    for n in sizes + [x.size]:
        chunks.append((x[i : i + n], rate))
        i += n
    calls = []
    embed = sp.backend.embed_audio
    sp.backend.embed_audio = lambda win, lens: calls.append(len(win)) or embed(win, lens)
    want = list(sp.stream(iter(chunks)))
    stream_calls, calls[:] = len(calls), []
    got = sp.replay_stream(iter(chunks))
    assert len(calls) < stream_calls / 10 and max(calls) == sp.batch_size
    assert len(want) > 20
    assert [(d.keyword, d.start, d.end, d.emitted) for d in got] == \
        [(d.keyword, d.start, d.end, d.emitted) for d in want]
    assert max(abs(p.score - q.score) for p, q in zip(got, want)) < 1e-5
    # The emission times are the stream's own: spread over the stream, not all at its end.
    assert len({d.emitted for d in got}) > 10


def test_a_file_is_detected_block_by_block_as_a_whole(tiny_model, tmp_path):
    """detect(path) streams the file in blocks (bounded memory for long recordings): the
    detections of the whole file's audio searched at once, for a 44.1 kHz stereo file read in
    1-second blocks."""
    import soundfile as sf
    from scipy.signal import resample_poly

    from pyadml.spot import audio

    sp = KeywordSpotter.load(tiny_model, num_threads=1, threshold=-1.0, refractory=0.3)
    sp.enroll(["computer", "yes", "turn on the light"])
    x = resample_poly(speechlike(9, seed=4), 441, 160).astype(np.float32)
    path = tmp_path / "long.wav"
    sf.write(path, np.stack([x, 0.5 * x], axis=1), 44100, subtype="FLOAT")
    whole = sp.detect((audio.load_audio(path, RATE), RATE))
    ranked = sorted(d.score for d in whole)
    thr = (ranked[len(ranked) // 2 - 1] + ranked[len(ranked) // 2]) / 2
    offline = sp.detect((audio.load_audio(path, RATE), RATE), threshold=thr)
    old, audio.BLOCK_SECONDS = audio.BLOCK_SECONDS, 1
    try:
        blocks = sp.detect(path, threshold=thr)
    finally:
        audio.BLOCK_SECONDS = old
    assert len(offline) >= 2
    _same(blocks, offline, 1e-5)


def test_stream_resampler_equals_resample_poly():
    """StreamResampler over pieces == scipy's resample_poly of the whole signal, for rates
    whose filters differ (up 1 / down 3, up 160 / down 441, up 2 / down 1), pieces down to one
    sample, and a stream shorter than the filter."""
    from scipy.signal import resample_poly

    from pyadml.spot.audio import StreamResampler

    rng = np.random.default_rng(0)
    for sr in (48000, 44100, 8000, 22050, RATE):
        g = np.gcd(sr, RATE)
        for n in (7, 3 * sr // 10 + 5):
            x = rng.standard_normal(n).astype(np.float32)
            whole = resample_poly(x, RATE // g, sr // g) if sr != RATE else x
            for cuts in ([], list(range(1, min(n, 300))),
                         sorted(rng.choice(np.arange(1, n), min(n - 1, 40), replace=False))):
                r = StreamResampler(sr, RATE)
                out = np.concatenate([r.process(p) for p in np.split(x, cuts)] + [r.finish()])
                assert out.shape == whole.shape, (sr, n)
                np.testing.assert_allclose(out, whole, atol=2e-6, err_msg=f"{sr} Hz, {n} samples")


def test_stream_with_two_rates_is_an_error():
    sp = tone_spotter()
    with pytest.raises(SpotError, match="audio chunk 1 is at 44100 Hz.*48000 Hz"):
        list(sp.stream([(background(0.5), 48000), (background(0.5), 44100)]))


def test_streaming_latency_is_bounded():
    """A detection is emitted about one hop after its window ends, not at the end of the stream."""
    sp = tone_spotter()
    burst = chirp_burst(sp.window_frames("computer"))
    x = insert(background(30), burst, [2.0])
    det = next(iter(sp.stream(x[i : i + 1600] for i in range(0, x.size, 1600))))
    assert det.start == 2.0 and det.emitted - det.end <= 0.3


def test_stream_memory_is_bounded():
    sp = tone_spotter()
    from pyadml.spot.features import OnlineFeatures
    from pyadml.spot.spotter import _Search

    search = _Search(sp, np.array([0.6]))
    feats = OnlineFeatures(sp.backend.features)
    for i in range(100):
        feats.accept(background(1, seed=i))
        search.feed(feats.take())
        assert search.buf.shape[0] <= sp.window_frames("computer") + sp.hop_frames + 2


def test_short_audio_is_one_window_of_its_true_length():
    sp = tone_spotter(threshold=-1.0)
    short = chirp_burst(30)  # 0.3 s: shorter than the 0.76 s window
    dets = sp.detect((short, RATE))
    assert len(dets) == 1 and dets[0].start == 0.0 and dets[0].end == pytest.approx(0.3, abs=0.011)
    assert dets[0].score > 0.5  # the chirp's contrast is seen, not a padded constant
    flat = sp.detect((background(0.3), RATE))
    assert abs(flat[0].score - dets[0].score) > 0.3
    # streaming gives the same for the short clip
    _same(sorted(sp.stream([short[:1000], short[1000:]])), dets, 0.0)
    with pytest.raises(SpotError, match="shorter than one feature frame"):
        sp.detect((short[:50], RATE))


def test_score_of_a_clip_is_one_embedding(tiny_model, espeak_wav):
    import soundfile as sf

    from pyadml.score.pairs import features_for
    from pyadml.data.features import fbank_extractor
    from pyadml.models.export import load_model
    from pyadml.score.embed import embed_features, embed_texts

    sp = KeywordSpotter.load(tiny_model, num_threads=1).enroll(["computer", "hello"])
    got = sp.score(espeak_wav)
    # score_pairs' route: lhotse fbank, mean normalisation, the torch encoders.
    loaded = load_model(tiny_model)
    feats = features_for(espeak_wav, fbank_extractor(dict(FBANK_NO_NORM)), RATE, True)
    a = embed_features(loaded.model, [feats])[0]
    t = embed_texts(loaded.model, ["computer", "hello"], loaded.tokenizer)
    for k in ("computer", "hello"):
        want = float(a @ t[k] / np.linalg.norm(a) / np.linalg.norm(t[k]))
        assert got[k] == pytest.approx(want, abs=2e-4)
    x, sr = sf.read(espeak_wav, dtype="float32")
    assert sp.score((x, sr)) == got
    assert isinstance(Detection("a", 0, 1, 0.5), Detection)


FBANK_NO_NORM = {"num_mel_bins": 40, "frame_length": 0.025, "frame_shift": 0.01, "dither": 0.0}


@pytest.mark.parametrize("step", [2, 3])
def test_coarse_scan_finds_what_the_full_scan_finds_for_less(step):
    full = tone_spotter()
    coarse = tone_spotter(scan_step=step, margin=0.3)
    x = insert(background(20, seed=4), chirp_burst(full.window_frames("computer")),
               [1.0, 4.27, 9.9, 15.55])
    want = full.detect((x, RATE))
    assert len(want) == 4
    from pyadml.spot.spotter import _Search
    from pyadml.spot.features import compute_fbank

    costs = {}
    for name, sp in (("full", full), ("coarse", coarse)):
        s = _Search(sp, np.array([0.6]))
        got = sorted(s.feed(compute_fbank(x, sp.backend.features)) + s.finish(), key=lambda d: d.start)
        costs[name] = (s.embedded, s.positions)
        _same(got, want, 0.0)
    assert costs["full"][1] == costs["coarse"][1]  # every position gets a score
    assert costs["coarse"][0] < 0.6 * costs["full"][0]
    _same(_stream_sorted(coarse, x, [1600] * 400), want, 0.0)


LEXICON_WORDS = ("computer hello morning window garden yellow market river silver paper "
                 "doctor butter kitchen planet orange monkey rabbit basket candle dinner "
                 "finger forest hammer jacket ladder letter meadow number pencil pocket "
                 "rocket salad summer ticket tiger tunnel turkey velvet wagon winter").split()


def lexicon_spotter(model, **opts):
    from pyadml.text import G2P

    sp = KeywordSpotter.load(model, num_threads=1, **opts)
    sp.tokenizer.lexicon = G2P().lexicon(LEXICON_WORDS)
    return sp


def test_cohort_normalisation_subtracts_the_mean_of_the_best_cohort_cosines(tiny_model, espeak_wav):
    plain = lexicon_spotter(tiny_model).enroll(["computer", "hello"])
    normed = lexicon_spotter(tiny_model, cohort=30, cohort_top=5).enroll(["computer", "hello"])
    words = normed.cohort_words()
    assert len(words) == 30 == len(set(words)) and not {"computer", "hello"} & set(words)
    assert words == normed.cohort_words()  # seeded: the same cohort every time
    # Slow reference: each cohort word scored as a keyword of its own by the plain spotter.
    cos = lexicon_spotter(tiny_model).enroll(words).score(espeak_wav)
    top5 = sorted(cos.values())[-5:]
    raw, got = plain.score(espeak_wav), normed.score(espeak_wav)
    for k in ("computer", "hello"):
        assert got[k] == pytest.approx(raw[k] - sum(top5) / 5, abs=1e-5)
    # Streaming and offline still agree with the normalisation on.
    x = __import__("soundfile").read(espeak_wav, dtype="float32")[0]
    want = normed.detect((x, RATE), threshold=-2.0)
    _same(_stream_sorted(normed, x, [1600] * (x.size // 1600 + 1), threshold=-2.0), want, 1e-6)
    with pytest.raises(SpotError, match="cohort"):
        KeywordSpotter.load(tiny_model, num_threads=1, cohort=5, cohort_top=9)
    with pytest.raises(SpotError, match="lexicon has"):
        lexicon_spotter(tiny_model, cohort=40).enroll(["computer"])  # 39 words besides it


def test_with_a_floor_a_quieter_recording_gives_the_same_scores_and_detections(tiny_model):
    """floor_db (pyadml.score.floor) floors each window on its own: the recording's level then
    no longer matters, while without it the digital silence at the start, on fbank's absolute
    floor, changes the scores of the quieter copy."""
    x = speechlike(6, seed=5)
    x[: 2 * RATE] = 0.0
    floored = KeywordSpotter.load(tiny_model, num_threads=1, threshold=-1.0, floor_db=50)
    plain = KeywordSpotter.load(tiny_model, num_threads=1, threshold=-1.0)
    for sp in (floored, plain):
        sp.enroll(["computer", "yes"])
    quiet = 0.3 * x
    a, b = plain.score((x, RATE)), plain.score((quiet, RATE))
    assert max(abs(a[k] - b[k]) for k in a) > 1e-3
    a, b = floored.score((x, RATE)), floored.score((quiet, RATE))
    assert max(abs(a[k] - b[k]) for k in a) < 1e-4
    loud = floored.detect((x, RATE))
    assert len(loud) >= 4
    _same(floored.detect((quiet, RATE)), loud, 1e-4)
    assert max(abs(p.score - q.score) for p, q in zip(plain.detect((x, RATE)), plain.detect((quiet, RATE)))) > 1e-3
    # Streaming == offline with the floor too (speech-like noise throughout: in digital silence
    # every window scores the same, and which of equal scores peaks is float noise).
    y = speechlike(8, seed=3)
    ranked = sorted(d.score for d in floored.detect((y, RATE)))
    k = int(0.75 * len(ranked))
    thr = (ranked[k - 1] + ranked[k]) / 2
    offline = floored.detect((y, RATE), threshold=thr)
    assert offline
    sizes = list(np.random.default_rng(2).integers(1, 4000, 200))
    _same(_stream_sorted(floored, y, sizes, thr), offline, 1e-5)
    with pytest.raises(SpotError, match="--floor-db must be a positive number"):
        KeywordSpotter.load(tiny_model, num_threads=1, floor_db=-1)


def test_a_model_trained_with_a_floor_spots_with_it(tiny_model, tmp_path):
    """A model whose features carry training's floor_db floors every window without being told
    (torch and its ONNX export alike); an explicit floor_db still wins."""
    from pyadml.spot.onnx_export import export_onnx

    trained = tiny_model_file(tmp_path / "floored.pt", floor_db=50.0)  # tiny_model's weights
    export_onnx(trained, tmp_path / "onnx")
    x = speechlike(6, seed=5)
    x[: 2 * RATE] = 0.0
    want = KeywordSpotter.load(tiny_model, num_threads=1, floor_db=50)
    want.enroll(["computer", "yes"])
    want = want.score((x, RATE))
    for model in (trained, tmp_path / "onnx"):
        sp = KeywordSpotter.load(model, num_threads=1)
        assert sp.floor_db == 50.0
        sp.enroll(["computer", "yes"])
        got = sp.score((x, RATE))
        assert max(abs(got[k] - want[k]) for k in want) < 1e-4
    assert KeywordSpotter.load(trained, num_threads=1, floor_db=30).floor_db == 30.0


def test_a_hop_off_the_frame_grid_is_refused_not_rounded():
    """--hop 0.025 used to run at 0.02 s without a word (windows start on 10 ms frames)."""
    with pytest.raises(SpotError, match=r"multiple of the 0.01 s frame shift, got 0.025; "
                                        r"use 0.02 or 0.03"):
        tone_spotter(hop=0.025)
    for hop in (0.01, 0.03, 0.07, 0.1):  # on the grid, float error and all
        assert tone_spotter(hop=hop).hop_frames == round(hop * 100)
    with pytest.raises(SpotError, match=r"hop must lie in \[0.01, 0.1\]"):
        tone_spotter(hop=0.2)
