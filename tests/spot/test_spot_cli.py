"""python -m pyadml.bin.detect (files, wav.scp, live PCM on stdin) and steps/detect.sh."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import RATE, speechlike

from pyadml.bin import detect as detect_cli
from pyadml.spot import KeywordSpotter

ROOT = Path(__file__).resolve().parents[2]
KW = "computer,turn on the light"


def env():
    e = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    e["PATH"] = f"{ROOT / '.venv' / 'bin'}:{e['PATH']}"
    e["PYTHONPATH"] = str(ROOT)
    return e


def wavs(tmp_path, n=3):
    out = []
    for i in range(n):
        p = tmp_path / f"utt{i}.wav"
        sf.write(p, speechlike(2.0 + i, seed=i), RATE, subtype="PCM_16")
        out.append(p)
    return out


def test_tsv_and_ctm_hold_the_spotters_detections(tiny_model, tmp_path):
    files = wavs(tmp_path, 2)
    # detect enrols by text and TTS voices by default (pyadml.score.enrol.DETECT_ENROL)
    sp = KeywordSpotter.load(tiny_model, num_threads=1, threshold=-1.0,
                             enrol="tts").enroll(KW.split(","))
    want = [(str(f), d) for f in files for d in sp.detect(f)]
    assert want
    tsv, ctm = tmp_path / "d.tsv", tmp_path / "d.ctm"
    base = ["--model", str(tiny_model), "--keywords", KW, "--threshold", "-1"]
    assert detect_cli.main(base + ["--out", str(tsv)] + [str(f) for f in files]) == 0
    assert detect_cli.main(base + ["--format", "ctm", "--out", str(ctm)] + [str(f) for f in files]) == 0
    rows = tsv.read_text().splitlines()
    assert rows[0] == "file\tkeyword\tstart\tend\tscore"
    assert [r.split("\t") for r in rows[1:]] == [
        [f, d.keyword, f"{d.start:.2f}", f"{d.end:.2f}", f"{d.score:.4f}"] for f, d in want]
    lines = [r.split() for r in ctm.read_text().splitlines()]
    assert lines == [[f, "1", f"{d.start:.2f}", f"{d.end - d.start:.2f}",
                      d.keyword.replace(" ", "_"), f"{d.score:.4f}"] for f, d in want]


def test_a_file_name_with_spaces_is_one_ctm_field(tiny_model, tmp_path):
    """A recording named as users name them ('kitchen mic 1.wav'): each CTM line keeps its six
    fields, the name's spaces written as _ (as a keyword's are); TSV keeps the name as given."""
    f = tmp_path / "kitchen mic 1.wav"
    sf.write(f, speechlike(2.0, seed=1), RATE, subtype="PCM_16")
    want = KeywordSpotter.load(tiny_model, num_threads=1, threshold=-1.0).enroll(
        KW.split(",")).detect(f)
    assert want
    ctm, tsv = tmp_path / "d.ctm", tmp_path / "d.tsv"
    base = ["--model", str(tiny_model), "--keywords", KW, "--threshold", "-1", "--enrol", "none"]
    assert detect_cli.main(base + ["--format", "ctm", "--out", str(ctm), str(f)]) == 0
    assert detect_cli.main(base + ["--out", str(tsv), str(f)]) == 0
    name = str(f).replace(" ", "_")
    assert [r.split() for r in ctm.read_text().splitlines()] == [
        [name, "1", f"{d.start:.2f}", f"{d.end - d.start:.2f}", d.keyword.replace(" ", "_"),
         f"{d.score:.4f}"] for d in want]
    assert [r.split("\t")[0] for r in tsv.read_text().splitlines()[1:]] == [str(f)] * len(want)


def test_keyword_and_wav_scp_files_as_windows_editors_save_them(tmp_path):
    from pyadml.spot.cli import parse_keywords, read_wav_scp

    kw = tmp_path / "keywords.txt"
    kw.write_bytes(b"\xef\xbb\xbfcomputer\r\nsmart mirror\r\n")
    assert parse_keywords(None, str(kw)) == ["computer", "smart mirror"]
    scp = tmp_path / "wav.scp"
    scp.write_bytes(b"\xef\xbb\xbfutt1 a.wav\r\nutt2 b.wav\r\n")
    assert read_wav_scp(str(scp)) == [("utt1", "a.wav"), ("utt2", "b.wav")]


def test_an_empty_keyword_list_names_where_it_came_from(tmp_path):
    from pyadml.spot.audio import SpotError
    from pyadml.spot.cli import parse_keywords

    blank = tmp_path / "keywords.txt"
    blank.write_text("\n   \n")
    with pytest.raises(SpotError, match=f"keywords file {blank} holds no keyword"):
        parse_keywords(None, str(blank))
    with pytest.raises(SpotError, match="empty keyword in the keyword list ' , '"):
        parse_keywords(" , ", str(blank))


def test_a_keywords_file_in_latin1_or_with_an_unpronounceable_line_names_the_line(tmp_path):
    """Before: 'cannot read keywords file …: 'utf-8' codec can't decode byte 0xe9 in position 13'
    (a byte offset), and '!!!' on line 3 named by its text alone, once the model was loaded."""
    from pyadml.spot.audio import SpotError
    from pyadml.spot.cli import parse_keywords

    latin = tmp_path / "latin1.txt"
    latin.write_bytes("alexa\r\n\r\ncaf\u00e9\r\n".encode("latin-1"))
    with pytest.raises(SpotError) as e:
        parse_keywords(None, str(latin))
    assert str(e.value) == (f"{latin}:3: not UTF-8 text (byte b'\\xe9' at column 4); convert the "
                            f"file, e.g. with iconv -f latin1 -t utf-8")
    bad = tmp_path / "keywords.txt"
    bad.write_bytes(b"\xef\xbb\xbfalexa\r\n\r\n!!!\r\n")
    with pytest.raises(SpotError, match=f"^{bad}:3: keyword '!!!' has nothing pronounceable"):
        parse_keywords(None, str(bad))


def test_keyword_lists_keep_a_numbers_thousands_separator():
    from pyadml.spot.cli import parse_keywords

    assert parse_keywords("win $5,000, alexa,100 points,7,8, 1,000,000 stars", None) == [
        "win $5,000", "alexa", "100 points", "7", "8", "1,000,000 stars"]


def test_enroll_splits_a_keyword_string_as_detect_does(tiny_model):
    """KeywordSpotter.enroll('win $5,000') enrolled 'win $5' and '000' (zero zero zero)."""
    from pyadml.spot.cli import parse_keywords

    text = "win $5,000, alexa,1,000,000 stars"
    sp = KeywordSpotter.load(tiny_model, num_threads=1).enroll(text)
    assert sp.keywords == parse_keywords(text, None) == ["win $5,000", "alexa", "1,000,000 stars"]
    assert sp.tokenizer.words(sp.keywords[0]) == ["win", "five", "thousand", "dollars"]


def test_per_keyword_thresholds_name_keywords_as_keywords_does():
    """A keyword with a number's thousands separator, which --keywords keeps, is named whole
    in --threshold; an item without a keyword is an error naming it."""
    from pyadml.spot.audio import SpotError
    from pyadml.spot.cli import parse_threshold

    assert parse_threshold("win $5,000=0.6, alexa=0.5,1,000,000 stars=0.4") == {
        "win $5,000": 0.6, "alexa": 0.5, "1,000,000 stars": 0.4}
    for bad, item in (("computer=0.6,0.5", "'0.5'"), ("=0.5", "'=0.5'"),
                      ("computer=high", "'computer=high'")):
        with pytest.raises(SpotError, match=f"--threshold: bad item {item} "):
            parse_threshold(bad)


def test_wav_scp_commands_are_read_as_kaldi_does(tiny_model, tmp_path):
    """'<utt> <command> |' lines: the command's output is the audio, as for Kaldi's sph2pipe
    and ffmpeg lines. A streamed WAV (unknown length, 0xFFFFFFFF in the header, as ffmpeg and
    sox write to a pipe) and a 44.1 kHz one give the detections of the files themselves."""
    files = wavs(tmp_path, 2)
    streamed = tmp_path / "streamed.wav"
    raw = bytearray(files[0].read_bytes())
    assert raw[36:40] == b"data"
    raw[4:8] = raw[40:44] = b"\xff\xff\xff\xff"
    streamed.write_bytes(bytes(raw))
    from scipy.signal import resample_poly

    hi = tmp_path / "hi.wav"
    sf.write(hi, resample_poly(sf.read(files[1])[0], 441, 160), 44100, subtype="FLOAT")
    scp = tmp_path / "wav.scp"
    scp.write_text(f"a cat {streamed} |\nb cat '{hi}' | cat |\nc {files[0]}\n")
    out, ref = tmp_path / "d.tsv", tmp_path / "r.tsv"
    base = ["--model", str(tiny_model), "--keywords", KW, "--threshold", "-1"]
    assert detect_cli.main(base + ["--wav-scp", str(scp), "--out", str(out)]) == 0
    assert detect_cli.main(base + ["--out", str(ref), str(files[0]), str(hi), str(files[0])]) == 0
    rows = lambda p: [r.split("\t")[1:] for r in p.read_text().splitlines()[1:]]  # noqa: E731
    assert rows(out) == rows(ref) and len(rows(out)) > 3
    names = [r.split("\t")[0] for r in out.read_text().splitlines()[1:]]
    assert names[0] == "a" and set(names) == {"a", "b", "c"}


def test_a_pipe_is_read_as_the_audio_it_carries(tiny_model, tmp_path):
    """bash's process substitution, detect <(sox a.mp3 -t wav -), names a pipe: it was 'no such
    file'. A named pipe fed a WAV gives the file's detections; junk is named as the pipe."""
    import threading

    wav = wavs(tmp_path, 1)[0]
    sp = KeywordSpotter.load(tiny_model, num_threads=1, threshold=-1.0).enroll(KW.split(","))
    want = sp.detect(wav)
    assert want

    def through_pipe(data: bytes):
        fifo = tmp_path / "fifo"
        if fifo.exists():
            fifo.unlink()
        os.mkfifo(fifo)
        # A daemon: if nothing opens the pipe, the blocked writer does not hold pytest open.
        writer = threading.Thread(target=fifo.write_bytes, args=(data,), daemon=True)
        writer.start()
        try:
            return sp.detect(fifo)
        finally:
            writer.join(timeout=10)

    assert through_pipe(wav.read_bytes()) == want
    from pyadml.spot.audio import SpotError

    with pytest.raises(SpotError, match=r"cannot read .*fifo: Error opening .*fifo: Format not "
                                        r"recognised"):
        through_pipe(b"junk" * 100)


def test_a_wsj_sphere_file_gives_the_detections_of_its_wav(tiny_model, tmp_path, monkeypatch):
    """The LDC's WSJ audio (Shorten-compressed SPHERE, which soundfile cannot read), named as a
    file or in a wav.scp, without sph2pipe."""
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "data"))
    from shorten_writer import encode, sphere

    wav = wavs(tmp_path, 1)[0]
    x = sf.read(wav, dtype="int16")[0].astype(np.int64)
    sph = tmp_path / "440c0201.wv1"
    sph.write_bytes(sphere(encode(x), len(x)))
    scp = tmp_path / "wav.scp"
    scp.write_text(f"w {sph}\n")
    out, ref, viascp = tmp_path / "d.tsv", tmp_path / "r.tsv", tmp_path / "s.tsv"
    base = ["--model", str(tiny_model), "--keywords", KW, "--threshold", "-1"]
    assert detect_cli.main(base + ["--out", str(out), str(sph)]) == 0
    assert detect_cli.main(base + ["--out", str(ref), str(wav)]) == 0
    assert detect_cli.main(base + ["--out", str(viascp), "--wav-scp", str(scp)]) == 0
    rows = lambda p: [r.split("\t")[1:] for r in p.read_text().splitlines()[1:]]  # noqa: E731
    assert rows(out) == rows(ref) == rows(viascp) and rows(out)


def test_wav_scp_command_errors(tiny_model, tmp_path, capsys):
    base = ["--model", str(tiny_model), "--keywords", KW]
    for line, want in [("u1 echo oops >&2; exit 3 |", "u1: command 'echo oops >&2; exit 3' exited "
                        "with status 3: oops"),
                       ("u2 echo hello |", "u2: the output of 'echo hello' (6 bytes) is not audio"),
                       ("u3 |", "wav.scp:1: expected '<utt-id> <wav path>' or '<utt-id> <command> |'"),
                       ("u4 /nowhere/sph2pipe -f wav a.wv1 |", "exited with status 127: "),
                       ("u4 /nowhere/sph2pipe -f wav a.wv1 |", "without sph2pipe, name the SPHERE "
                        "file itself ('<id> <file.wv1>'): Shorten-compressed SPHERE is decoded")]:
        scp = tmp_path / "wav.scp"
        scp.write_text(line + "\n")
        out = tmp_path / "d.tsv"
        assert detect_cli.main(base + ["--wav-scp", str(scp), "--out", str(out)]) != 0
        assert want in capsys.readouterr().err
        assert not out.exists()


def test_stdin_pcm_gives_the_file_detections(onnx_dir, tmp_path):
    # The ONNX backend: torch-free processes start fast.
    x = speechlike(5.0, seed=9)
    pcm = np.round(x * 32767).astype("<i2")
    wav = tmp_path / "live.wav"
    sf.write(wav, pcm, RATE, subtype="PCM_16")
    run = lambda extra, **kw: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "pyadml.bin.detect", "--model", str(onnx_dir), "--keywords", KW,
         "--threshold", "-0.2"] + extra, capture_output=True, cwd=ROOT, env=env(), timeout=120, **kw)
    live = run(["--stdin-pcm", "--sample-rate", "16000", "--chunk-seconds", "0.037"],
               input=pcm.tobytes())
    offline = run([str(wav)])
    assert live.returncode == 0 and offline.returncode == 0, live.stderr + offline.stderr
    rows = lambda out: sorted(r.split("\t")[1:] for r in out.decode().splitlines()[1:])  # noqa: E731
    assert rows(live.stdout) == rows(offline.stdout) and rows(live.stdout)


def test_steps_detect_sh_over_a_data_dir(onnx_dir, tmp_path):
    files = wavs(tmp_path, 3)
    data = tmp_path / "data" / "test"
    data.mkdir(parents=True)
    (data / "wav.scp").write_text("".join(f"u{i} {f}\n" for i, f in enumerate(files)))
    recipe = tmp_path / "recipe"
    recipe.mkdir()
    (recipe / "steps").symlink_to(ROOT / "steps")
    (recipe / "utils").symlink_to(ROOT / "utils")
    res = subprocess.run(["bash", "steps/detect.sh", "--nj", "2", "--keywords", KW, "--threshold",
                          "-1", str(onnx_dir), str(data), str(tmp_path / "out")], cwd=recipe,
                         env=env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    got = (tmp_path / "out" / "detections.tsv").read_text()
    ref = tmp_path / "ref.tsv"
    assert detect_cli.main(["--model", str(onnx_dir), "--keywords", KW, "--threshold", "-1",
                            "--wav-scp", str(data / "wav.scp"), "--out", str(ref)]) == 0
    assert got == ref.read_text() and got.count("\n") > 3
    assert (tmp_path / "out" / "log" / "detect.2.log").is_file()
    # A failing job: no detections file, non-zero status.
    (data / "wav.scp").write_text(f"u0 {files[0]}\nu1 {tmp_path / 'missing.wav'}\n")
    res = subprocess.run(["bash", "steps/detect.sh", "--nj", "2", "--keywords", KW,
                          str(onnx_dir), str(data), str(tmp_path / "out")], cwd=recipe,
                         env=env(), capture_output=True, text=True, timeout=300)
    assert res.returncode != 0
    assert not (tmp_path / "out" / "detections.tsv").exists()


def test_detect_prints_what_each_keyword_is_heard_as(tiny_model, tmp_path, capsys):
    """stderr names each keyword's words and phones, and the words the neural G2P guessed."""
    from pyadml.spot.cli import pronunciations

    wav = wavs(tmp_path, 1)[0]
    args = ["--model", str(tiny_model), "--keywords", "computer,GPT,zorblaxify", str(wav)]
    assert detect_cli.main(args) == 0
    err = capsys.readouterr().err.splitlines()
    assert "detect: keyword 'computer': computer = K AH0 M P Y UW1 T ER0" in err
    assert "detect: keyword 'GPT': gpt = JH IY1 P IY1 T IY1" in err  # spelled, not guessed
    guessed = [line for line in err if "zorblaxify" in line]
    assert len(guessed) == 1 and guessed[0].endswith("(guessed by the neural G2P: zorblaxify)")
    tok = KeywordSpotter.load(tiny_model).tokenizer
    lines = pronunciations(tok, ["computer", "GPT", "zorblaxify"], limit=2)
    assert len(lines) == 3 and lines[-1] == "... and 1 more keyword(s)"


def test_a_keyword_that_starts_with_a_minus_is_a_keyword_not_an_option(tiny_model, tmp_path,
                                                                       capsys):
    wav = wavs(tmp_path, 1)[0]
    args = ["--model", str(tiny_model), "--keywords", "-40 degrees", str(wav)]
    assert detect_cli.main(args) == 0  # argparse alone: "expected one argument"
    err = capsys.readouterr().err
    assert "keyword '-40 degrees': minus forty degrees" in err
    # an option after --keywords is still an option: the missing value is argparse's error
    with pytest.raises(SystemExit):
        detect_cli.main(["--model", str(tiny_model), "--keywords", "--out", "x.tsv", str(wav)])
    assert "--keywords: expected one argument" in capsys.readouterr().err


def test_a_keyword_no_enrolment_voice_can_speak_is_detected_at_the_text_only_threshold(
        tiny_model, tmp_path, monkeypatch, capsys):
    """TTS enrolment leaves a keyword that no voice could speak to its text alone, whose cosines
    run lower than a TTS query's: before, it kept the TTS default threshold (0.57, against 0.5
    for text enrolment) and detect said nothing of it."""
    from pyadml.spot.spotter import DEFAULT_THRESHOLD, DEFAULT_THRESHOLD_TTS

    def synthesize(voice, texts, on_failure="raise"):  # every voice fails on 'jarvis'
        return [None if t == "jarvis" else speechlike(0.6, seed=len(t)) for t in texts]

    monkeypatch.setattr("pyadml.synth.voices.synthesize", synthesize)
    voices = "espeak:en-us+m1,espeak:en-gb+f1"
    sp = KeywordSpotter.load(tiny_model, enrol="tts", enrol_voices=voices).enroll(["computer", "jarvis"])
    assert sp.thresholds == {"computer": DEFAULT_THRESHOLD_TTS, "jarvis": DEFAULT_THRESHOLD}
    sp.enroll(["jarvis"])  # enrolled again: still its text alone
    assert sp.thresholds["jarvis"] == DEFAULT_THRESHOLD
    given = KeywordSpotter.load(tiny_model, enrol="tts", enrol_voices=voices)
    given.enroll(["computer", "jarvis"], threshold={"jarvis": 0.7})
    assert given.thresholds == {"computer": DEFAULT_THRESHOLD_TTS, "jarvis": 0.7}
    assert KeywordSpotter.load(tiny_model, enrol="tts", enrol_voices=voices, threshold=0.6).enroll(
        ["computer", "jarvis"]).thresholds == {"computer": 0.6, "jarvis": 0.6}
    wav = wavs(tmp_path, 1)[0]
    assert detect_cli.main(["--model", str(tiny_model), "--keywords", "computer,jarvis",
                            "--enrol-voices", voices, str(wav)]) == 0
    err = capsys.readouterr().err
    assert ("detect: keyword 'jarvis': no enrolment voice could speak it; enrolled by its text "
            "alone, at threshold 0.5") in err and "keyword 'computer': no enrolment" not in err
