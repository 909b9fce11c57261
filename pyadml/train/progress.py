"""Console progress of long stages (synthesis, training), apart from the stage logs.

utils/stage.sh's run_stage sends a stage's stdout and stderr to its log and gives the command a
progress channel instead: the file named by ``$PYADML_PROGRESS`` (``<log>.progress``), which it
copies to the console while the stage runs. ``$PYADML_PROGRESS_TTY=1`` says the console is a
terminal: then a live bar is drawn (tqdm, redrawn in place with carriage returns); otherwise,
for a pipe or a file, one plain line at most every ``$PYADML_PROGRESS_INTERVAL`` seconds
(default 15), plus the lines that mark events (an epoch's dev AP, a corpus finished). Without
``$PYADML_PROGRESS`` (a step run by hand) progress goes to stderr, live when it is a terminal.

A pipe line reads ``   <desc>: <n>/<total> <unit> (<pct>%) | <field> | ... | elapsed <t> | ETA <t>``.
This module imports nothing heavy: the synthesis and shell-driven steps use it too.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable, TextIO

ENV_FILE = "PYADML_PROGRESS"
ENV_TTY = "PYADML_PROGRESS_TTY"
ENV_INTERVAL = "PYADML_PROGRESS_INTERVAL"
DEFAULT_INTERVAL = 15.0
INDENT = "   "  # under run_stage's "== Stage N" banner, like its "   log:" line


def format_seconds(seconds: float | None) -> str:
    """``42s``, ``3:07``, ``1:02:03`` (``?`` when unknown)."""
    if seconds is None or seconds != seconds or seconds < 0 or seconds == float("inf"):
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def channel() -> tuple[TextIO, bool, bool]:
    """(stream, live, owned): where progress goes, whether to draw a live bar, and whether the
    stream is a file opened here (to close)."""
    path = os.environ.get(ENV_FILE)
    if path:
        try:
            return open(path, "a", buffering=1, encoding="utf-8"), os.environ.get(ENV_TTY) == "1", True
        except OSError:
            pass
    err = sys.stderr
    return err, bool(getattr(err, "isatty", lambda: False)()), False


def interval_from_env() -> float:
    try:
        return max(0.0, float(os.environ.get(ENV_INTERVAL, DEFAULT_INTERVAL)))
    except ValueError:
        return DEFAULT_INTERVAL


def note(text: str) -> None:
    """One event line on the progress channel, outside any bar."""
    stream, _, owned = channel()
    try:
        stream.write(f"{INDENT}{text}\n")
        stream.flush()
    except (OSError, ValueError):
        pass
    finally:
        if owned:
            stream.close()


class Progress:
    """Progress of one piece of work, ``total`` units of ``unit``.

    ``update(n, **fields)`` advances by n units and sets fields shown after the count (a value of
    None removes one; floats print with 4 significant digits unless preformatted as strings);
    ``note(text)`` prints an event line at once; ``close()`` prints the final line. ``eta_s``,
    when set by the caller, replaces the ETA estimated from the rate so far (a trainer knows
    about the dev evaluations still to come); ``total`` may be changed on the way.
    """

    def __init__(self, desc: str, total: int | None, unit: str = "", *,
                 stream: TextIO | None = None, live: bool | None = None,
                 interval: float | None = None, clock: Callable[[], float] = time.monotonic,
                 initial: int = 0, show_rate: bool = True):
        self._owned = False
        if stream is None:
            stream, env_live, self._owned = channel()
            live = env_live if live is None else live
        self.stream = stream
        self.live = bool(live)
        self.desc, self.unit = desc, unit
        self.interval = interval_from_env() if interval is None else interval
        self.clock = clock
        self.t0 = self._last = clock()
        self.n = self.n0 = initial
        self._total = total
        self.fields: dict[str, object] = {}
        self.eta_s: float | None = None
        self.show_rate = show_rate and bool(unit)
        self.closed = False
        self._bar = None
        if self.live:
            self._bar = _bar_class()(total=total, initial=initial, desc=f"{INDENT}{desc}", file=stream,
                             unit=f" {unit}" if unit else "it", mininterval=0.5, ncols=_columns(),
                             bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}"
                                        "{unit}{fields}", dynamic_ncols=False, leave=True)

    # ------------------------------------------------------------------ state
    @property
    def total(self) -> int | None:
        return self._total

    @total.setter
    def total(self, value: int | None) -> None:
        self._total = value
        if self._bar is not None:
            self._bar.total = value

    def elapsed(self) -> float:
        return self.clock() - self.t0

    def rate(self) -> float | None:
        """Units per second since the start (of this process's share of the work)."""
        el = self.elapsed()
        return (self.n - self.n0) / el if el > 0 and self.n > self.n0 else None

    def eta(self) -> float | None:
        if self.eta_s is not None:
            return self.eta_s
        rate = self.rate()
        if not self.total or rate is None:
            return None
        return max(0, self.total - self.n) / rate

    def _field_text(self) -> list[str]:
        out = []
        rate = self.rate() if self.show_rate else None
        if rate is not None:
            out.append(f"{rate:.3g} {self.unit}/s")
        for k, v in self.fields.items():
            if isinstance(v, float):
                v = f"{v:.4g}"
            # "utt/s": 45 reads "45 utt/s"; "loss": 1.2 reads "loss 1.2"
            out.append(f"{v} {k}" if k.endswith("/s") else f"{k} {v}" if k else str(v))
        return out

    def line(self, final: bool = False) -> str:
        """The line a pipe gets."""
        count = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        if self.unit:
            count += f" {self.unit}"
        if self.total:
            count += f" ({100 * min(self.n, self.total) / self.total:.0f}%)"
        parts = [count, *self._field_text(), f"elapsed {format_seconds(self.elapsed())}"]
        if not final:
            parts.append(f"ETA {format_seconds(self.eta())}")
        return f"{INDENT}{self.desc}: " + " | ".join(parts)

    def _postfix(self) -> str:
        parts = self._field_text() + [f"elapsed {format_seconds(self.elapsed())}",
                                      f"ETA {format_seconds(self.eta())}"]
        return " | " + " | ".join(parts)

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a console that went away must not stop the work

    # ------------------------------------------------------------------ events
    def update(self, n: int = 1, **fields) -> None:
        if self.closed:
            return
        self.n += n
        for k, v in fields.items():
            if v is None:
                self.fields.pop(k, None)
            else:
                self.fields[k] = v
        if self._bar is not None:
            self._bar.fields = self._postfix()
            self._bar.update(n)
            return
        now = self.clock()
        if now - self._last >= self.interval:
            self._last = now
            self._write(self.line())

    def set_desc(self, desc: str) -> None:
        self.desc = desc
        if self._bar is not None:
            self._bar.set_description_str(f"{INDENT}{desc}", refresh=False)

    def set(self, **fields) -> None:
        self.update(0, **fields)

    def note(self, text: str) -> None:
        """An event line (always shown, in both modes)."""
        if self._bar is not None:
            self._bar.write(f"{INDENT}{text}", file=self.stream)
        else:
            self._write(f"{INDENT}{text}")

    def close(self, **fields) -> None:
        if self.closed:
            return
        for k, v in fields.items():
            if v is None:
                self.fields.pop(k, None)
            else:
                self.fields[k] = v
        self.closed = True
        if self._bar is not None:
            self.eta_s = 0.0
            self._bar.fields = self._postfix()
            self._bar.close()
        else:
            self._write(self.line(final=True))
        if self._owned:
            try:
                self.stream.close()
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _columns() -> int:
    """The live bar's width: the terminal's, which run_stage passes on (PYADML_PROGRESS_COLS)."""
    try:
        cols = int(os.environ.get("PYADML_PROGRESS_COLS") or os.environ.get("COLUMNS") or 100)
        return max(60, min(cols, 200))
    except ValueError:
        return 100


class TrainProgress:
    """Stage 6's console: ``train, epoch E/N: S/T steps (P%) | loss L | R utt/s | elapsed |
    ETA``, where T counts the steps of every epoch of the stage and the ETA adds the dev
    evaluations still to come (timed on the last one) to the remaining steps at the rate so
    far; a line ``epoch E/N done in ..; dev AP ..`` after each epoch. Rank 0 only."""

    def __init__(self, epochs: int, step: int, dev: bool = True, **progress_opts):
        self.epochs, self.dev = epochs, dev
        self.clock = progress_opts.get("clock", time.monotonic)
        self.bar = Progress("train", None, "steps", initial=step, show_rate=False,
                            **progress_opts)
        self.train_s, self.steps_timed, self.dev_s = 0.0, 0, None
        self.epoch = 0
        self._t = self._t_epoch = self.clock()
        self._utts = 0

    def start_epoch(self, epoch: int, step: int, batches_done: int, batches: int) -> None:
        """Epoch ``epoch`` (0-based) starts at global ``step`` with ``batches_done`` of its
        ``batches`` already done (a resume): every epoch left is taken to be as long."""
        self.epoch = epoch
        self.bar.total = step - batches_done + (self.epochs - epoch) * batches
        self.bar.set_desc(f"train, epoch {epoch + 1}/{self.epochs}")
        self._t = self._t_epoch = self.clock()
        self._utts = 0

    def step(self, utterances: int, loss: float | None = None) -> None:
        now = self.clock()
        self.train_s += now - self._t
        self.steps_timed += 1
        self._t = now
        self._utts += utterances
        fields = {"utt/s": f"{self._utts / max(now - self._t_epoch, 1e-9):.3g}"}
        if loss is not None:
            fields = {"loss": f"{loss:.4f}", **fields}
            self.bar.fields.pop("utt/s", None)  # keep loss first
        self.bar.eta_s = self.eta()
        self.bar.update(1, **fields)

    def eta(self) -> float | None:
        if not self.steps_timed or not self.bar.total:
            return None
        steps_left = max(0, self.bar.total - self.bar.n - 1)
        evals_left = (self.epochs - self.epoch) if self.dev else 0
        return steps_left * self.train_s / self.steps_timed + evals_left * (self.dev_s or 0.0)

    def epoch_done(self, epoch: int, seconds: float, dev_ap: float | None,
                   dev_seconds: float | None = None) -> None:
        """After epoch ``epoch`` (1-based count of finished epochs) and its dev evaluation."""
        if dev_seconds is not None:
            self.dev_s = dev_seconds
        self.epoch = epoch
        text = f"epoch {epoch}/{self.epochs} done in {format_seconds(seconds)}"
        if dev_ap is not None:
            text += f"; dev AP {dev_ap:.4f}"
        self.bar.note(text)
        self._t = self.clock()

    def close(self) -> None:
        self.bar.eta_s = 0.0
        self.bar.close()


_BAR = None


def _bar_class():
    """tqdm with a ``{fields}`` placeholder (its own ``{postfix}`` adds a comma)."""
    global _BAR
    if _BAR is None:
        from tqdm import tqdm

        class Bar(tqdm):
            fields = ""

            @property
            def format_dict(self):
                d = super().format_dict
                d["fields"] = self.fields
                return d

        _BAR = Bar
    return _BAR
