"""Stage 4 helpers for steps/make_fbank.sh and make_fbank_sets.sh: split a cut manifest, compute
fbank (part JOB of one or several sets in one process), merge parts."""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

from pyadml.data.features import compute_fbank, merge_cuts, split_cuts


def speed(what: str, cuts, took: float) -> str:
    """The line "<what>: N cuts, H h of audio in S s (Xx real time)" that make_fbank.sh prints."""
    audio = sum(c.duration for c in cuts)
    return (f"{what}: {len(cuts)} cuts, {audio / 3600:.3f} h of audio in {took:.1f} s "
            f"({audio / max(took, 1e-9):.0f}x real time)")


def compute_many(job: int, sets: list[list[str]], config: str | None) -> int:
    """Part JOB of each set in one process, so that torch and lhotse load once per job, not once
    per set; a part that fails does not stop the others (each is written whole or not at all)."""
    todo, failed = [], []
    for name, parts, cuts, storage, out in sets:
        what = f"fbank {name} part {job}/{parts}"
        if job > int(parts):  # a set of fewer cuts than --nj has fewer parts
            print(f"fbank {name}: no part {job} (split into {parts})")
        elif Path(out).is_file():  # written last: a finished part
            print(f"{what}: {out} exists, skipping")
        elif not Path(cuts).is_file():
            print(f"{what}: expected the part's cuts in {cuts}, no such file", file=sys.stderr)
            failed.append(what)
        else:
            todo.append((what, cuts, storage, out))
    if todo:
        t0 = time.time()
        import pyadml.data.augment  # noqa: F401  torch and lhotse: the start-up the parts share

        print(f"fbank job {job}: torch and lhotse loaded in {time.time() - t0:.1f} s")
    done = []
    for what, cuts, storage, out in todo:
        t = time.time()
        try:
            computed = compute_fbank(cuts, storage, out, config)
        except Exception as e:
            traceback.print_exc()
            print(f"{what}: failed (above), from {cuts}", file=sys.stderr)
            # The reason in the job's last line too: $cmd's report and run_stage show the last
            # lines of the log, and the traceback above them is off the console.
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            if not isinstance(e, OSError):
                reason = f"{type(e).__name__}: {reason}"
            failed.append(f"{what} ({reason[:600]})")
            continue
        print(speed(what, computed, time.time() - t))
        done.extend(computed)
    if len(todo) > 1:
        print(speed(f"fbank job {job}, {len(todo)} parts", done, time.time() - t0))
    if failed:
        print(f"fbank job {job}: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("split", help="split cuts into N contiguous parts")
    s.add_argument("--interleave", action="store_true",
                   help="run k of consecutive cuts of one recording to part k mod N (an even share "
                        "of every stretch of the manifest; a recording in one part); writes "
                        "OUT_DIR/runs.txt.gz for merge --runs")
    s.add_argument("cuts")
    s.add_argument("num_splits", type=int)
    s.add_argument("out_dir")
    cm = sub.add_parser("compute-many", help="compute part JOB of several sets in one process "
                        "(one $cmd job of steps/make_fbank_sets.sh)")
    cm.add_argument("--config", default=None, help="conf/fbank.yaml")
    cm.add_argument("--job", type=int, required=True, help="the part to compute of each set")
    cm.add_argument("--set", dest="sets", action="append", nargs=5, required=True,
                    metavar=("NAME", "PARTS", "CUTS", "STORAGE", "OUT"),
                    help="a set split into PARTS parts: its part JOB is computed from CUTS into "
                         "STORAGE.lca (written under a temporary name and renamed into place) and "
                         "OUT (written last, so it marks a finished part); skipped when JOB > "
                         "PARTS or OUT exists; repeated for each set")
    m = sub.add_parser("merge", help="merge parts in the order given")
    m.add_argument("--interleave", action="store_true",
                   help="one cut (with --runs: one run) of each part in turn: the inverse of "
                        "split --interleave")
    m.add_argument("--runs", default=None, help="split --interleave's runs.txt.gz")
    m.add_argument("out")
    m.add_argument("parts", nargs="+")
    args = p.parse_args(argv)

    if args.cmd == "split":
        paths = split_cuts(args.cuts, args.num_splits, args.out_dir, args.interleave)
        how = "interleaved" if args.interleave else "contiguous"
        print(f"split {args.cuts} into {len(paths)} {how} parts under {args.out_dir}")
    elif args.cmd == "compute-many":
        if args.job < 1:
            p.error(f"--job must be a positive integer, got {args.job}")
        names = [name for name, *_ in args.sets]
        for name, parts, *_ in args.sets:
            if not parts.isdigit() or int(parts) < 1:
                p.error(f"--set {name}: PARTS must be a positive integer, got {parts!r}")
            if names.count(name) > 1:
                p.error(f"--set {name} given {names.count(name)} times")
        return compute_many(args.job, args.sets, args.config)
    else:
        try:
            n = merge_cuts(args.parts, args.out, args.interleave, args.runs)
        except ValueError as e:
            print(f"fbank merge: {e}", file=sys.stderr)
            return 1
        print(f"merged {len(args.parts)} parts: {n} cuts -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
