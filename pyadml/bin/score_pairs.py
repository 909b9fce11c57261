"""Score (wav, keyword) pairs with an exported model (pyadml.score.pairs).

Input lines: ``<wav path>\\t<keyword text>[\\t<label 0/1>]``. The output repeats each line with the
score appended; with labels, AP, EER and AUC are printed. As for any recording a user scores,
each file's features are floored 50 dB below its loudest value first (pyadml.score.floor;
``--floor-db none``: without), a cosine model scores a multi-word keyword's words as well, in
order (pyadml.score.phrase; ``--phrase-score clip``: the clip cosine alone), and its scores are
adaptive-T-normed with its training keywords as cohort (pyadml.score.norm; ``--score-norm
none``: the cosines). Each keyword is enrolled by its text and by TTS voices speaking it
(pyadml.score.enrol; ``--enrol none``: the text alone). Any bad line is an error that names it,
and then nothing is written.

``--speaker-mean UTT2SPK`` (``<wav>\\t<speaker>`` lines, the wav as the pairs give it): each
file's embedding less the shrunk mean of its speaker's other files, before T-norm
(pyadml.score.speaker_mean). Off by default: it needs the speakers, and a speaker's gain grows
with their files (egs/wsj_librikws/RESULTS.md, "Per-speaker mean normalisation").
"""

from __future__ import annotations

import argparse
import sys

from pyadml.score.floor import CLIP_FLOOR_DB, add_floor_args
from pyadml.score.enrol import CLIP_ENROL, add_enrol_args
from pyadml.score.norm import CLIP_SCORE_NORM, add_norm_args
from pyadml.score.phrase import CLIP_PHRASE_SCORE, add_phrase_args
from pyadml.score.pairs import PairsError, score_pairs_file


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="final.pt")
    p.add_argument("--pairs", required=True, help="TSV: wav<TAB>keyword[<TAB>label]")
    p.add_argument("--out", required=True, help="the input lines with a score column")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument("--vad", action="store_true", help="energy voice-activity front end: cut each file to the frames within 30 dB of "
                   "its loudest plus 50 ms before scoring (off: the paper's protocol, audio as given)")
    add_floor_args(p, default_db=CLIP_FLOOR_DB)
    add_norm_args(p, default=CLIP_SCORE_NORM)
    add_phrase_args(p, default=CLIP_PHRASE_SCORE)
    add_enrol_args(p, default=CLIP_ENROL)
    p.add_argument("--speaker-mean", metavar="UTT2SPK", default=None,
                   help="<wav>\\t<speaker> lines (or spaces, as Kaldi's utt2spk): each file's "
                   "embedding less the shrunk mean of its speaker's other files, before T-norm "
                   "(cosine models; default off)")
    args = p.parse_args(argv)
    try:
        res = score_pairs_file(args.model, args.pairs, args.out, args.batch_size, args.device,
                               vad=args.vad, norm=args.score_norm, cohort_size=args.cohort_size,
                               phrase=args.phrase_score, words_onnx=args.words_onnx,
                               jobs=args.jobs, floor_db=args.floor_db,
                               default_floor_db=CLIP_FLOOR_DB, default_norm=CLIP_SCORE_NORM,
                               default_phrase=CLIP_PHRASE_SCORE, enrol=args.enrol,
                               default_enrol=CLIP_ENROL, enrol_voices=args.enrol_voices,
                               enrol_weight=args.enrol_weight, speakers=args.speaker_mean)
    except PairsError as e:
        print(f"score_pairs: {e}", file=sys.stderr)
        return 1
    print(f"score_pairs: {len(res.lines)} pairs ({res.num_wavs} wavs, {res.num_keywords} "
          f"keywords) -> {args.out}")
    print("score_pairs: " + (f"features floored {res.floor_db:g} dB below each file's loudest "
                             "(--floor-db none: without)" if res.floor_db is not None
                             else "no level-relative floor"))
    print("score_pairs: " + (f"scores adaptive-T-normed by each file's {res.cohort_size} closest "
                             "training keywords (--score-norm none: the cosines)"
                             if res.norm == "tnorm" else "scores not normalised"))
    print("score_pairs: " + ("multi-word keywords also scored word by word, in order "
                             "(--phrase-score clip: the clip cosine alone, about ten times faster; "
                             "--words-onnx DIR --jobs N: the windows through an ONNX export)"
                             if res.phrase == "words"
                             else "the clip cosine alone, for multi-word keywords too"))
    print("score_pairs: " + ("keywords enrolled by their text and by TTS voices "
                             "(--enrol none: the text alone)" if res.enrol == "tts"
                             else "keywords enrolled by their text alone"))
    if res.speakers:
        print(f"score_pairs: each file less the shrunk mean of its speaker's other files "
              f"({res.speakers} speakers" + (f"; {res.alone} file(s) alone in theirs, kept as they "
                                             f"are)" if res.alone else ")"))
    if res.text_only:
        print(f"score_pairs: no enrolment voice could speak {len(res.text_only)} keyword(s), "
              f"scored by their text alone: {', '.join(res.text_only[:5])}"
              + (" ..." if len(res.text_only) > 5 else ""))
    for line in res.summary():
        print(line if line.startswith(("AP", "EER", "AUC")) else f"score_pairs: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
