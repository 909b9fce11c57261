"""The logic of ``python -m pyadml.bin.detect``: keywords, inputs and output formats.

Output rows (TSV, with a header): ``file keyword start end score``; CTM: ``<file> 1 <start>
<duration> <keyword> <score>`` with whitespace in a keyword or a file name written as ``_``
(a CTM field is one token). ``file`` is the utterance id of a wav.scp line, else the path as
given. Files are written atomically once every input is done, so a bad input leaves no partial
output.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Iterable, TextIO

from pyadml.fileio import not_utf8_error, write_lines_atomic
from pyadml.text.g2p import G2P
from pyadml.text.normalize import KeywordError

from .audio import SpotError, read_pcm_chunks
from .spotter import KEYWORD_COMMA, Detection, KeywordSpotter

FORMATS = ("tsv", "ctm")
TSV_HEADER = "file\tkeyword\tstart\tend\tscore"


def parse_keywords(keywords: str | None, keywords_file: str | None) -> list[str]:
    """--keywords (comma-separated, a number's thousands separator kept) and --keywords-file
    (one keyword per line) as one list in order, duplicates dropped."""
    out: list[str] = []
    if keywords is not None:
        out += [k.strip() for k in KEYWORD_COMMA.split(keywords)]
    if keywords_file is not None:
        try:
            # utf-8-sig: a byte-order mark (Windows editors) is not part of the first keyword.
            lines = Path(keywords_file).read_text(encoding="utf-8-sig").splitlines()
        except UnicodeDecodeError:
            raise SpotError(not_utf8_error(keywords_file)) from None
        except OSError as e:
            raise SpotError(f"cannot read keywords file {keywords_file}: {e}") from None
        for n, line in enumerate(lines, 1):
            if line.strip():
                try:  # named at its line here, not by its text alone when enrolled
                    G2P().words(line)
                except KeywordError as e:
                    raise SpotError(f"{keywords_file}:{n}: {e}") from None
                out.append(line.strip())
    if keywords is None and keywords_file is None:
        raise SpotError("no keywords given: use --keywords 'a,b' or --keywords-file")
    empty = [i for i, k in enumerate(out) if not k]
    if empty or not out:
        given = " and ".join(x for x in (keywords is not None and f"--keywords {keywords!r}",
                                         keywords_file and f"keywords file {keywords_file}") if x)
        raise SpotError(f"empty keyword in the keyword list {keywords!r}" if out else
                        f"the keyword list is empty ({given} holds no keyword)")
    return list(dict.fromkeys(out))


# Keywords whose pronunciation detect prints (stderr); a longer list gets a count.
SHOWN_PRONUNCIATIONS = 20


def pronunciations(tokenizer, keywords: list[str], limit: int = SHOWN_PRONUNCIATIONS) -> list[str]:
    """What the model listens for, one line per keyword: its normalised words and phones, and
    the words whose phones the neural G2P guessed (in neither the model's lexicon nor CMUdict,
    nor spelled as an initialism), so that a user can check a name or a made-up word."""
    lines = []
    for k in keywords[:limit]:
        words = tokenizer.words(k)
        guessed = [w for w in words if w not in tokenizer.lexicon and tokenizer.g2p.guesses(w)]
        lines.append(f"keyword {k!r}: {' '.join(words)} = {' '.join(tokenizer.phones(k))}"
                     + (f" (guessed by the neural G2P: {', '.join(guessed)})" if guessed else ""))
    if len(keywords) > limit:
        lines.append(f"... and {len(keywords) - limit} more keyword(s)")
    return lines


def text_only_keywords(spotter, threshold=None) -> list[str]:
    """A line per keyword that TTS enrolment left to its text alone (no voice could speak it),
    with the threshold it is then detected at: score_pairs says so too."""
    alone = [k for k in spotter.keywords
             if spotter.enrolment is not None and k in spotter.enrolment.text_only]
    lines = []
    for k in alone:
        t = threshold.get(k) if isinstance(threshold, dict) else threshold
        t = spotter.thresholds[k] if t is None else t
        lines.append(f"keyword {k!r}: no enrolment voice could speak it; enrolled by its text "
                     f"alone, at threshold {t:g}")
    return lines


def parse_threshold(text: str | None):
    """``0.6`` for every keyword, or ``computer=0.6,smart mirror=0.55``."""
    if text is None:
        return None
    if "=" not in text:
        try:
            return float(text)
        except ValueError:
            raise SpotError(f"--threshold must be a number or kw=value,...; got {text!r}") from None
    out = {}
    # Split as --keywords is, so that 'win $5,000=0.6' names the keyword 'win $5,000'.
    for item in KEYWORD_COMMA.split(text):
        kw, sep, val = item.rpartition("=")
        try:
            if not kw.strip():
                raise ValueError
            out[kw.strip()] = float(val)
        except ValueError:
            raise SpotError(f"--threshold: bad item {item!r} (expected keyword=number)") from None
    return out


def read_wav_scp(path: str) -> list[tuple[str, str]]:
    rows = []
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise SpotError(f"cannot read {path}: {e}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or parts[1].strip() == "|":
            raise SpotError(f"{path}:{n}: expected '<utt-id> <wav path>' or '<utt-id> <command> |', "
                            f"got {line!r}")
        rows.append((parts[0], parts[1].strip()))
    if not rows:
        raise SpotError(f"{path} lists no recordings")
    return rows


def check_out(out: str | None, inputs: Iterable[str]) -> None:
    """Refuse, before any work, an --out that is a directory or one of the inputs (a recording
    named twice by a slip would be replaced by the detections), as score_pairs does."""
    if out is None or out == "-":
        return
    path = Path(out)
    if path.is_dir():
        raise SpotError(f"--out {out} is a directory; give a file name")
    try:  # now, not after an hour of audio has been searched
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SpotError(f"--out {out}: cannot create its directory: {e}") from None
    from pyadml.fileio import cannot_write_in

    why = cannot_write_in(path.parent)  # a read-only directory (a shared model's) too
    if why:
        raise SpotError(f"--out {out}: cannot write it: {why}; give --out a file elsewhere")
    if path.exists():
        for i in inputs:
            if Path(i).exists() and path.samefile(i):
                raise SpotError(f"--out {out} is the input {i}; writing it would replace the input")


def read_piped(entry: str) -> tuple:
    """A Kaldi wav.scp command (``sph2pipe -f wav a.sph |``, ``ffmpeg -i a.mp3 -f wav - |``):
    run by the shell, its standard output read as one audio file."""
    import io
    import subprocess

    import soundfile as sf

    command = entry[:-1].strip()
    try:
        proc = subprocess.run(command, shell=True, executable="/bin/bash", capture_output=True)
    except OSError as e:
        raise SpotError(f"cannot run {command!r}: {e}") from None
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        hint = ""
        if proc.returncode == 127 and "sph2pipe" in command:
            # Kaldi's tools are not installed: the SPHERE file can be named itself.
            hint = ("; without sph2pipe, name the SPHERE file itself ('<id> <file.wv1>'): "
                    "Shorten-compressed SPHERE is decoded by pyadml")
        raise SpotError(f"command {command!r} exited with status {proc.returncode}"
                        + (f": {err[-1]}" if err else "") + hint)
    stream = io.BytesIO(proc.stdout)
    try:
        audio, sr = sf.read(stream, dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises several types for a stream it cannot parse
        why = str(e).replace(repr(stream), "it")  # not '<_io.BytesIO object at 0x...>'
        raise SpotError(f"the output of {command!r} ({len(proc.stdout)} bytes) is not audio "
                        f"soundfile can read: {why}") from None
    return audio, sr


def ctm_token(text: str) -> str:
    """``text`` as one CTM field: whitespace (a keyword's, or a file name's such as
    'my recording.wav') becomes ``_``, or the line would have more than six fields."""
    return re.sub(r"\s", "_", text)


def format_detection(name: str, d: Detection, fmt: str) -> str:
    if fmt == "ctm":
        return (f"{ctm_token(name)} 1 {d.start:.2f} {d.end - d.start:.2f} {ctm_token(d.keyword)} "
                f"{d.score:.4f}")
    return f"{name}\t{d.keyword}\t{d.start:.2f}\t{d.end:.2f}\t{d.score:.4f}"


def run_files(spotter: KeywordSpotter, inputs: Iterable[tuple[str, str]], fmt: str,
              out: str | None, threshold=None, log: TextIO | None = None) -> int:
    """Detect in every input; write all rows once every input is done. Returns the count."""
    log = sys.stderr if log is None else log  # the stderr of the call, not of the import
    rows = [TSV_HEADER] if fmt == "tsv" else []
    count = 0
    for name, path in inputs:
        try:
            audio = read_piped(path) if path.endswith("|") else path
            dets = spotter.detect(audio, threshold=threshold)
        except SpotError as e:
            raise SpotError(f"{name}: {e}" if name != path else str(e)) from None
        rows += [format_detection(name, d, fmt) for d in dets]
        count += len(dets)
        print(f"detect: {name}: {len(dets)} detection(s)", file=log)
    _emit(rows, out)
    return count


def run_stdin(spotter: KeywordSpotter, stream, sample_rate: int, fmt: str, out: str | None,
              threshold=None, chunk_seconds: float = 0.1, name: str = "stdin",
              stdout: TextIO = sys.stdout) -> int:
    """Live detection on raw 16-bit PCM. To stdout, each detection is printed (and flushed) as
    it is found; with ``out`` the file is written once, when the stream ends cleanly."""
    chunks = read_pcm_chunks(stream, sample_rate, spotter.rate, chunk_seconds)
    rows = [TSV_HEADER] if fmt == "tsv" else []
    if out is None and rows:
        print(rows[0], file=stdout, flush=True)
    count = 0
    for d in spotter.stream(chunks, threshold=threshold):
        row = format_detection(name, d, fmt)
        count += 1
        if out is None:
            print(row, file=stdout, flush=True)
        else:
            rows.append(row)
    if out is not None:
        _emit(rows, out)
    return count


def _emit(rows: list[str], out: str | None) -> None:
    if out is None or out == "-":
        sys.stdout.write("".join(r + "\n" for r in rows))
        sys.stdout.flush()
    else:
        try:
            write_lines_atomic(out, rows)
        except OSError as e:  # a full disk, a directory made read-only meanwhile
            raise SpotError(f"cannot write --out {out}: {e}") from None
