"""The registry of corpus preparers by name, loading of plugin files, and manifest summaries."""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import re
import sys
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType
from typing import Callable

from pyadml.data.prepare.common import CorpusError

# prepare(corpus_dir, output_dir, **options) -> dict of manifests
Preparer = Callable[..., dict]

_PREPARERS: dict[str, Preparer] = {}


def _origin(fn) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def register_corpus(name: str, preparer: Preparer | None = None):
    """Register ``preparer(corpus_dir, output_dir, **options) -> dict of manifests`` as the
    corpus ``name``: ``@register_corpus("mycorpus")`` or ``register_corpus("mycorpus", fn)``.

    The preparer is returned unchanged. A name already registered by another function is an
    error; registering the same function again (a plugin loaded twice) is not.
    """
    if not isinstance(name, str) or not re.fullmatch(r"[\w.-]+", name):
        raise CorpusError(f"corpus name must be letters, digits, '_', '-' or '.', got {name!r}")

    def add(fn: Preparer) -> Preparer:
        if not callable(fn):
            raise CorpusError(f"corpus {name!r}: the preparer must be callable, got {fn!r}")
        old = _PREPARERS.get(name)
        if old is not None and _origin(old) != _origin(fn):
            raise CorpusError(f"corpus {name!r} is already registered by {_origin(old)}; "
                              f"{_origin(fn)} cannot register it too")
        _PREPARERS[name] = fn
        return fn

    return add if preparer is None else add(preparer)


def corpora() -> list[str]:
    """The registered corpus names, sorted."""
    return sorted(_PREPARERS)


def get_preparer(name: str) -> Preparer:
    try:
        return _PREPARERS[name]
    except KeyError:
        raise CorpusError(f"unknown corpus {name!r}; known corpora: {', '.join(corpora())}") from None


def load_plugin(path: str | os.PathLike) -> ModuleType:
    """Import the Python file ``path`` (e.g. a recipe's ``local/prepare_mycorpus.py``) so that
    its ``register_corpus`` calls take effect; returns the module."""
    path = Path(path)
    if not path.exists():
        raise CorpusError(f"{path}: plugin file does not exist")
    if not path.is_file():
        raise CorpusError(f"{path}: plugin is not a file")
    resolved = path.resolve()
    # One module name per file, so loading a file twice re-registers the same functions.
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:10]
    stem = re.sub(r"\W", "_", resolved.stem)
    mod_name = f"pyadml_plugin_{stem}_{digest}"
    # An explicit loader: a plugin file need not end in .py.
    loader = SourceFileLoader(mod_name, str(resolved))
    spec = importlib.util.spec_from_file_location(mod_name, resolved, loader=loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module  # dataclasses and pickle look a class's module up here
    try:
        loader.exec_module(module)
    except Exception as e:
        sys.modules.pop(mod_name, None)
        raise CorpusError(f"{path}: plugin failed to import: {type(e).__name__}: {e}") from e
    return module


def _check_options(name: str, fn: Preparer, options: dict) -> None:
    """A clear error for an option the preparer does not take, instead of a TypeError."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # no introspectable signature: let the call decide
        return
    params = list(sig.parameters.values())
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    # The first two parameters receive corpus_dir and output_dir.
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)][:2]
    takes = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
             and p not in positional]
    unknown = [o for o in options if o not in takes]
    if unknown:
        have = f"its options are {', '.join(takes)}" if takes else "it takes no options"
        raise CorpusError(f"corpus {name!r} does not take the option "
                          f"{', '.join(repr(o) for o in unknown)} ({have})")
    try:
        sig.bind("corpus_dir", "output_dir", **options)
    except TypeError as e:
        raise CorpusError(f"corpus {name!r}: {_origin(fn)} cannot be called as "
                          f"prepare(corpus_dir, output_dir, **options): {e}") from None


def prepare_corpus(name: str, corpus_dir: str | os.PathLike,
                   output_dir: str | os.PathLike | None = None, /, **options) -> dict:
    """Run the preparer registered as ``name``; ``options`` must be parameters it takes.
    Positional-only, so that an option may be called ``name`` (the kaldi corpus's)."""
    fn = get_preparer(name)
    _check_options(name, fn, options)
    given = os.fspath(corpus_dir)
    if given.startswith("~") and not os.path.exists(given):
        # db.sh's MUSAN="~/corpora/musan": the shell expands no ~ in quotes, and the preparer
        # said '<recipe>/~/corpora/musan: MUSAN directory does not exist'
        home = f" or $HOME{given[1:]}" if given == "~" or given.startswith("~/") else ""
        raise CorpusError(f"{given}: the shell does not expand a ~ in quotes (db.sh: "
                          f"VAR=\"~/...\"), so this names a directory called '{given.split('/')[0]}'; "
                          f"write {os.path.expanduser(given)}{home}, or leave the ~ unquoted")
    manifests = fn(corpus_dir, output_dir, **options)
    if not isinstance(manifests, dict):
        raise CorpusError(f"corpus {name!r}: {_origin(fn)} returned {type(manifests).__name__}, "
                          f"expected a dict of manifests")
    return manifests


def summarize(label: str, manifests: dict) -> str:
    """``label: N recordings, N supervisions, H h[, N aligned words][, N csv rows]``."""
    recs = manifests["recordings"]
    parts = [f"{len(recs)} recordings", f"{sum(r.duration for r in recs) / 3600:.3f} h"]
    sups = manifests.get("supervisions")
    if sups is not None:
        parts.insert(1, f"{len(sups)} supervisions")
        words = sum(len(s.alignment["word"]) for s in sups if s.alignment and "word" in s.alignment)
        if words:
            parts.append(f"{words} aligned words")
    if "rows" in manifests:
        parts.append(f"{len(manifests['rows'])} csv rows")
    return f"{label}: " + ", ".join(parts)


def summary_lines(name: str, manifests: dict, options: dict | None = None) -> list[str]:
    """One :func:`summarize` line per part: the result of ``prepare_corpus(name, ...)`` is one
    part, labelled ``<name> <part>`` (option or default), or a dict of parts (musan)."""
    options = options or {}
    label = options.get("name") or name
    if "recordings" in manifests:
        part = options.get("part")
        if part is None:
            try:
                default = inspect.signature(get_preparer(name)).parameters.get("part")
            except (TypeError, ValueError):
                default = None
            if default is not None and isinstance(default.default, str):
                part = default.default
        return [summarize(f"{label} {part}" if part else label, manifests)]
    return [summarize(f"{label} {k}", m) if isinstance(m, dict) and "recordings" in m
            else f"{label} {k}: {type(m).__name__}" for k, m in manifests.items()]
