"""Markdown results tables and the sections of egs/<recipe>/RESULTS.md (stage 8)."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Iterator, Mapping

from pyadml.fileio import not_utf8_error, write_text_atomic

# (column title, metrics key, shown as a percentage)
COLUMNS = [
    ("trials", "num_trials", False),
    ("AP (%)", "AP", True),
    ("AP seen (%)", "AP_seen", True),
    ("AP unseen (%)", "AP_unseen", True),
    ("EER (%)", "EER", True),
    ("AUC (%)", "AUC", True),
    ("EER batch-avg (%)", "EER_batch", True),
]


def _cell(value, percent: bool) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if percent:
        return f"{100 * float(value):.2f}"
    return str(value)


def results_table(metrics: Mapping[str, Mapping]) -> str:
    """One row per test set, one column per headline metric (absent ones shown as '-'); columns
    no set reports are left out."""
    cols = [c for c in COLUMNS if any(c[1] in m for m in metrics.values())]
    lines = ["| test set | " + " | ".join(c[0] for c in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for name, m in metrics.items():
        lines.append(f"| {name} | " + " | ".join(_cell(m.get(k), pct) for _, k, pct in cols) + " |")
    return "\n".join(lines) + "\n"


def _split_sections(text: str) -> tuple[str, list[tuple[str, str]]]:
    """(preamble, [(title, whole section text)]) split at '## ' headings."""
    parts = re.split(r"(?m)^(?=## )", text)
    preamble, sections = parts[0], []
    for part in parts[1:]:
        title = part.splitlines()[0][3:].strip()
        sections.append((title, part))
    return preamble, sections


def _notes(section: str) -> str:
    """What a user wrote in a section below the lines update_results_md writes (its table and
    the config, git commit and command lines): kept when the section is rewritten. A section
    without those lines (written by hand under this title) is all notes."""
    lines = section.split("\n")[1:]
    for i in range(len(lines) - 1):
        if lines[i].startswith("- config: ") and lines[i + 1].startswith("- git commit: "):
            end = i + 2 + (i + 2 < len(lines) and lines[i + 2].startswith("- command: "))
            lines = lines[end:]
            break
    return "\n".join(lines).strip("\n")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive flock on ``.<name>.lock`` beside ``path`` for the block: RESULTS.md is shared
    by every experiment of a recipe, and two stage 8s (or the runs of one) that read, edit and
    rename it at once would each write the file without the other's section. The lock file is
    left in place (removing it would let a third writer lock a new one while a second waits)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.parent / f".{path.name}.lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor drops the flock


def update_results_md(
    path: str | os.PathLike,
    section_title: str,
    table_md: str,
    config_path: str | None,
    git_commit: str | None,
    command: str | None,
) -> None:
    """Write or replace the ``## <section_title>`` section of RESULTS.md (the first of that
    title), keeping the others in place, and the user's notes below the replaced one's command
    line; a new section goes at the end. Writers in other processes wait for each other."""
    title = " ".join(section_title.split())
    if not title:
        raise ValueError("update_results_md: empty section title")
    path = Path(path)
    with _locked(path):
        _update(path, title, table_md, config_path, git_commit, command)


def read_results_md(path: str | os.PathLike) -> str:
    """The text of RESULTS.md, its line ends as "\\n" ("# Results" and a blank line where there
    is none yet); a file that
    is not UTF-8 (saved by a Latin-1 editor) raises ValueError naming its first bad line, so
    stage 8 can refuse it before scoring rather than fail on it after."""
    path = Path(path)
    if not path.exists():
        return "# Results\n\n"
    try:
        return path.read_bytes().decode("utf-8").replace("\r\n", "\n")
    except UnicodeDecodeError:
        raise ValueError(not_utf8_error(path)) from None


def _update(path: Path, title: str, table_md: str, config_path: str | None,
            git_commit: str | None, command: str | None) -> None:
    old = read_results_md(path)
    # A file saved with Windows line ends keeps them (git's diff of it stays the new section).
    crlf = path.exists() and b"\r\n" in path.read_bytes()
    preamble, sections = _split_sections(old)
    body = [f"## {title}", "", table_md.rstrip("\n"), ""]
    body += [f"- config: `{config_path or 'unknown'}`",
             f"- git commit: `{git_commit or 'unknown'}`"]
    if command:
        body.append(f"- command: `{command}`")
    new = "\n".join(body) + "\n\n"
    out, replaced = [], False
    for t, text in sections:
        if t == title and not replaced:
            notes = _notes(text)
            out.append(new + (notes + "\n\n" if notes else ""))
            replaced = True
        else:
            # A later section of the same title (pasted from another copy of the file) is kept
            # as it is: only the first is this experiment's to replace.
            out.append(text if text.endswith("\n\n") else text.rstrip("\n") + "\n\n")
    if not replaced:
        out.append(new)
    if preamble and not preamble.endswith("\n\n"):
        preamble = preamble.rstrip("\n") + "\n\n"
    text = (preamble + "".join(out)).rstrip("\n") + "\n"
    write_text_atomic(path, text.replace("\n", "\r\n") if crlf else text)


def plots_line(plots: Mapping[str, str]) -> str:
    """A markdown line linking the plots beside a results table: ``plots: [ROC](roc.png) · ...``
    (link text -> file name relative to the table)."""
    if not plots:
        return ""
    return "plots: " + " · ".join(f"[{name}]({path})" for name, path in plots.items()) + "\n"
