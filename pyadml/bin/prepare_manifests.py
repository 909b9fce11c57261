"""Stage 1: write the lhotse manifests of one corpus and print what they hold.

    python -m pyadml.bin.prepare_manifests <corpus> <corpus_dir> <output_dir>
        [--plugin FILE ...] [--ctm P] [--part NAME] [--name NAME]

<corpus> is a registered corpus: a built-in one, or one that a --plugin file registers with
``@register_corpus("mycorpus")`` (pyadml.data.prepare). The built-in ``kaldi`` takes any Kaldi
data directory as <corpus_dir>, with an optional word CTM (--ctm), and writes
``<name>_{recordings,supervisions}_<part>.jsonl.gz``. --ctm, --part and --name are passed to
the preparer only when given.

Several corpora in one process (one start of Python, torch and lhotse instead of one each, as
the recipes' local/prepare_manifests.sh does): their argument lists separated by ``---``.
They are prepared in order; the first that fails stops the command.

``--inputs-list FILE`` (in any group) writes, once every corpus is prepared, the text files the
preparers read (Kaldi tables, CTMs, transcripts; not the audio), one path a line: run.sh hashes
them into stage 1's .done marker (``stage_input_lists``), so editing a corpus reruns stage 1.

    python -m pyadml.bin.prepare_manifests wsj /corpora/wsj data/manifests \
        --- musan /corpora/musan data/manifests
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pyadml.data.prepare import CorpusError, corpora, load_plugin, prepare_corpus, summary_lines
from pyadml.data.prepare.common import forget_inputs, inputs_read
from pyadml.fileio import atomic_path


SEPARATOR = "---"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", help=f"a registered corpus name (built in: {', '.join(corpora())}) "
                                  f"or one a --plugin file registers")
    p.add_argument("corpus_dir")
    p.add_argument("output_dir")
    p.add_argument("--plugin", action="append", default=[], metavar="FILE",
                   help="Python file to import first, for its @register_corpus preparers (repeatable)")
    p.add_argument("--ctm", default=None, help="word CTM (kaldi, wsj; wsj default <corpus_dir>/data/words.ctm); "
                   "librispeech: the alignments directory, or none for whole utterances only")
    p.add_argument("--part", default=None, help="part name in the manifest file names (kaldi, wsj, libriphrase)")
    p.add_argument("--name", default=None, help="corpus name in the manifest file names (kaldi)")
    p.add_argument("--resample", action="store_true",
                   help="kaldi: recordings at another rate than 16 kHz are resampled when loaded "
                        "(lhotse; the files stay as they are) instead of being an error")
    p.add_argument("--inputs-list", default=None, metavar="FILE",
                   help="write the text files every preparer read here, one a line (for stage 1's marker)")
    return p


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    groups = [[]]
    for tok in argv:
        if tok == SEPARATOR:
            groups.append([])
        else:
            groups[-1].append(tok)
    p = parser()
    runs = [p.parse_args(g) for g in groups]  # all parsed before any corpus is prepared
    forget_inputs()
    for args in runs:
        options = {k: v for k in ("ctm", "part", "name") if (v := getattr(args, k)) is not None}
        if args.resample:
            options["resample"] = True
        try:
            for plugin in args.plugin:
                load_plugin(plugin)
            manifests = prepare_corpus(args.corpus, args.corpus_dir, args.output_dir, **options)
            lines = summary_lines(args.corpus, manifests, options)
        except CorpusError as e:
            print(f"prepare_manifests: {e}", file=sys.stderr)
            return 1
        for line in lines:
            print(line)
        print(f"prepare_manifests: manifests in {args.output_dir}")
    for path in {a.inputs_list for a in runs if a.inputs_list}:
        with atomic_path(path) as tmp:
            Path(tmp).write_text("".join(f"{f}\n" for f in inputs_read()), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
