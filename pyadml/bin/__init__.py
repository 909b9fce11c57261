"""Command-line entry points (python -m pyadml.bin.<name>) and what several of them share."""

from __future__ import annotations


def parse_run_options(run_parser, runs: list[str], shared: tuple[str, ...]) -> list[tuple]:
    """Each ``--run OPTS`` of a scoring command (score, score_clips) parsed by ``run_parser``:
    [(namespace, tokens)]. OPTS is split as a shell would; an option in ``shared`` (the command
    line's own) or a nested --run is refused, naming the run."""
    import shlex

    out = []
    for i, opts in enumerate(runs, 1):
        try:
            tokens = shlex.split(opts)
        except ValueError as e:
            run_parser.error(f"--run {i} ({opts!r}): {e}")
        bad = [t for t in tokens if t.split("=")[0] in shared + ("--run",)]
        if bad:
            run_parser.error(f"--run {i} ({opts!r}): {bad[0]} is the command line's, not a run's")
        out.append((run_parser.parse_args(tokens), tokens))
    return out
