"""Detect text-enrolled keywords in recordings or a live PCM stream (pyadml.spot).

  python -m pyadml.bin.detect --model exp/adml_nomal_mini/final.pt --keywords "computer,smart mirror" a.wav b.flac
  python -m pyadml.bin.detect --model onnx_dir --backend onnx --keywords computer --wav-scp data/test/wav.scp --format ctm --out dets.ctm
  arecord -f S16_LE -r 16000 -c 1 -t raw | python -m pyadml.bin.detect --model final.pt --keywords computer --stdin-pcm --sample-rate 16000

Output: TSV (file, keyword, start, end, score; with a header) or CTM; to --out (written
atomically when every input is done) or stdout. Any bad input is an error naming it.
"""

from __future__ import annotations

import argparse
import sys

from pyadml.score.floor import add_floor_args
from pyadml.score.enrol import DETECT_ENROL, add_enrol_args


def _keywords_joined(argv: list[str], options) -> list[str]:
    """argparse takes a value that starts with '-' ("-5°", "-40 degrees") for an option and
    stops with "expected one argument"; such a value after --keywords, when it is no option of
    ``options``, is joined to it, as if written --keywords=-5°."""
    out = []
    for arg in argv:
        if out and out[-1] == "--keywords" and arg.startswith("-") and arg not in options:
            out[-1] = f"--keywords={arg}"
        else:
            out.append(arg)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="final.pt (torch) or an export_onnx directory")
    p.add_argument("--backend", choices=("torch", "onnx"), default=None,
                   help="default: onnx for a directory, torch for a file")
    p.add_argument("--keywords", help="comma-separated keyword texts (the comma of a number such "
                   "as 5,000 is kept; other texts with commas: --keywords-file)")
    p.add_argument("--keywords-file", help="one keyword text per line")
    p.add_argument("--threshold", help="cosine threshold, or per keyword: 'computer=0.6,alexa=0.5' "
                   "(default 0.57 with TTS enrolment, 0.5 with --enrol none: about 1 false alarm "
                   "per hour on stage 9's streams)")
    p.add_argument("--format", choices=("tsv", "ctm"), default="tsv")
    p.add_argument("--out", help="output file (default: stdout)")
    p.add_argument("--wav-scp", help="Kaldi wav.scp: '<utt-id> <path>' or '<utt-id> <command> |' lines")
    p.add_argument("--stdin-pcm", action="store_true", help="read raw 16-bit little-endian mono PCM from stdin")
    p.add_argument("--sample-rate", type=int, help="rate of the --stdin-pcm stream")
    p.add_argument("--chunk-seconds", type=float, default=0.1, help="--stdin-pcm read size")
    p.add_argument("--hop", type=float, default=0.1, help="window hop in seconds (<= 0.1, in "
                   "10 ms frames; 0.05 detects 50-80 ms sooner, for twice the compute)")
    p.add_argument("--refractory", type=float, default=None, help="seconds between two detections "
                   "of a keyword (default: the keyword's window length, so they never overlap)")
    p.add_argument("--window-scale", type=float, default=None, help="keyword window = this x the "
                   "keyword's synthetic duration from its phone count (default: the spotter's, 1.5)")
    p.add_argument("--scan-step", type=int, default=1,
                   help="embed every Nth position, the others only near a threshold (2-3: faster)")
    p.add_argument("--cohort", type=int, default=0, help="cohort score normalisation with this "
                   "many lexicon words (0: off; thresholds are then cosine less the cohort mean)")
    p.add_argument("--num-threads", type=int, default=1, help="threads of the encoder (default 1)")
    add_floor_args(p)
    add_enrol_args(p, default=DETECT_ENROL)
    p.add_argument("audio", nargs="*", help="audio files (any format soundfile reads)")
    args = p.parse_args(_keywords_joined(list(sys.argv[1:] if argv is None else argv),
                                         p._option_string_actions))

    from pyadml.spot.audio import SpotError
    from pyadml.spot import cli

    try:
        if args.stdin_pcm and (args.audio or args.wav_scp):
            raise SpotError("--stdin-pcm reads standard input only; give no files or --wav-scp")
        if args.stdin_pcm and not args.sample_rate:
            raise SpotError("--stdin-pcm needs --sample-rate (raw PCM carries no header)")
        if not args.stdin_pcm and not args.audio and not args.wav_scp:
            raise SpotError("no input: give audio files, --wav-scp or --stdin-pcm")
        keywords = cli.parse_keywords(args.keywords, args.keywords_file)
        threshold = cli.parse_threshold(args.threshold)
        inputs = [(a, a) for a in args.audio]
        if args.wav_scp:
            inputs += cli.read_wav_scp(args.wav_scp)
        cli.check_out(args.out, [f for f in (args.model, args.wav_scp, args.keywords_file) if f]
                      + [path for _, path in inputs if not path.endswith("|")])
        from pyadml.spot import KeywordSpotter

        spotter = KeywordSpotter.load(args.model, backend=args.backend, num_threads=args.num_threads,
                                      hop=args.hop,
                                      refractory=args.refractory, scan_step=args.scan_step,
                                      cohort=args.cohort, window_scale=args.window_scale,
                                      floor_db=args.floor_db,
                                      enrol=args.enrol,
                                      enrol_voices=args.enrol_voices,
                                      enrol_weight=args.enrol_weight)
        spotter.enroll(keywords)
        for line in (cli.pronunciations(spotter.tokenizer, keywords)
                     + cli.text_only_keywords(spotter, threshold)):
            print(f"detect: {line}", file=sys.stderr)
        if args.stdin_pcm:
            n = cli.run_stdin(spotter, sys.stdin.buffer, args.sample_rate, args.format, args.out,
                              threshold, args.chunk_seconds)
        else:
            n = cli.run_files(spotter, inputs, args.format, args.out, threshold)
    except SpotError as e:
        print(f"detect: {e}", file=sys.stderr)
        return 1
    print(f"detect: {n} detection(s){' -> ' + args.out if args.out else ''}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
