"""Fixtures shared across test folders."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

TRAIN_WORDS = ["cat", "dog", "fish", "bird", "tree", "road", "lamp", "door"]


def pytest_collection_modifyitems(items):
    # The modules that run a whole recipe first (stable: the rest keep their order): with
    # utils/run_tests.sh's workers, the longest file then starts at once instead of last.
    items.sort(key=lambda item: item.get_closest_marker("recipe_run") is None)


# torch's thread count as a fresh process has it, before any test changes it.
FRESH_TORCH_THREADS = torch.get_num_threads()


@pytest.fixture(autouse=True)
def _torch_threads():
    """torch's thread count is the process's (KeywordSpotter.load(num_threads=1) sets it): put
    it back after each test, so that a later test in the same worker computes as a fresh
    process does, and as the subprocesses it compares with byte for byte do."""
    yield
    if torch.get_num_threads() != FRESH_TORCH_THREADS:
        torch.set_num_threads(FRESH_TORCH_THREADS)


@pytest.fixture(scope="session")
def tiny_training_data(tmp_path_factory) -> Path:
    """8 keywords x 5 utterances of distinct tone patterns with fbank (4 train, 1 dev each),
    a lang dir (lexicon, phones, keyword ids) and dev trials: enough to train in seconds."""
    from lhotse import CutSet, Fbank, FbankConfig, LilcomChunkyWriter, Recording, SupervisionSegment

    from pyadml.data.dataset import write_keyword_ids
    from pyadml.data.trials import Trial, write_trials
    from pyadml.text import Tokenizer

    root = tmp_path_factory.mktemp("train_data")
    rng = np.random.default_rng(0)
    cuts = []
    for k, word in enumerate(TRAIN_WORDS):
        for u in range(5):
            n = int(16000 * rng.uniform(0.25, 0.45))
            t = np.arange(n) / 16000
            x = 0.3 * np.sin(2 * np.pi * (200 + 90 * k) * t) + 0.01 * rng.standard_normal(n)
            path = root / f"{word}{u}.wav"
            sf.write(path, x, 16000)
            rec = Recording.from_file(path)
            cuts.append(rec.to_cut().with_id(f"{word}{u}"))
            cuts[-1].supervisions = [SupervisionSegment(f"{word}{u}", rec.id, 0, rec.duration, text=word)]
    cuts = CutSet.from_cuts(cuts).compute_and_store_features(
        Fbank(FbankConfig(num_mel_bins=40)), root / "feats", storage_type=LilcomChunkyWriter)
    train = CutSet.from_cuts([c for c in cuts if not c.id.endswith("4")])
    dev = CutSet.from_cuts([c for c in cuts if c.id.endswith("4")])
    train.to_file(root / "train.jsonl.gz")
    dev.to_file(root / "dev.jsonl.gz")
    Tokenizer.build(TRAIN_WORDS).write_lang_dir(root / "lang")
    write_keyword_ids(root / "lang" / "keywords.txt", TRAIN_WORDS)
    write_trials(root / "dev.tsv",
                 [Trial(c.id, w, int(c.supervisions[0].text == w)) for c in dev for w in TRAIN_WORDS])
    (root / "fbank.yaml").write_text("num_mel_bins: 40\n")
    return root


@pytest.fixture
def disk_full(monkeypatch):
    """``disk_full(directory, after=0)``: from now on, writes through Python's open() (and
    io.open, pathlib's) to files under ``directory`` fail with ENOSPC once ``after`` bytes are
    written to a file, as on a full disk (no mount needed: tests run where mounting is not
    allowed). Returns the list of the files it cut short."""
    import builtins
    import errno
    import io
    import os

    real_open = builtins.open
    cut: list[str] = []
    where: list[tuple[str, int]] = []

    class Full(io.RawIOBase):
        def __init__(self, f, limit):
            self.f, self.left = f, limit

        def writable(self):
            return True

        def seekable(self):
            return self.f.seekable()

        def seek(self, *a):
            return self.f.seek(*a)

        def tell(self):
            return self.f.tell()

        def write(self, b):
            n = min(len(b), self.left)
            if n < len(b) and not cut.count(self.f.name):
                cut.append(self.f.name)
            if n == 0 and len(b):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.f.name)
            self.left -= n
            return self.f.write(bytes(b[:n]))

        def close(self):
            self.f.close()
            super().close()

    def fake_open(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        if not isinstance(file, (str, os.PathLike)) or not any(c in mode for c in "wax+"):
            return f
        full = os.path.abspath(os.fspath(file))
        for d, after in where:
            if full.startswith(d + os.sep):
                if "b" not in mode:
                    f.close()
                    raw = Full(real_open(file, mode.replace("t", "") + "b"), after)
                    return io.TextIOWrapper(io.BufferedWriter(raw), **{
                        k: v for k, v in kwargs.items() if k in ("encoding", "errors", "newline")})
                return io.BufferedWriter(Full(f, after)) if "b" in mode else f
        return f

    def start(directory, after: int = 0):
        where.append((os.path.abspath(os.fspath(directory)), after))
        monkeypatch.setattr(builtins, "open", fake_open)
        monkeypatch.setattr(io, "open", fake_open)  # pathlib's write_text and write_bytes
        return cut

    return start


@pytest.fixture
def read_only(monkeypatch):
    """``read_only(directory)``: from now on, making a file (tempfile.mkstemp, as every atomic
    write does) or a directory under ``directory`` fails with EROFS, as on a read-only mount or
    an experiment shared read-only (chmod does not stop root, and tests may not mount)."""
    import errno
    import os
    import tempfile

    where: list[str] = []
    real_mkstemp, real_mkdir = tempfile.mkstemp, os.mkdir

    def under(path) -> bool:
        full = os.path.abspath(os.fspath(path))
        return any(full == d or full.startswith(d + os.sep) for d in where)

    def erofs(path):
        return OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))

    def mkstemp(suffix=None, prefix=None, dir=None, text=False):
        if under(dir if dir is not None else tempfile.gettempdir()):
            raise erofs(os.path.join(os.fspath(dir), f"{prefix or ''}XXXXXXXX{suffix or ''}"))
        return real_mkstemp(suffix, prefix, dir, text)

    def mkdir(path, mode=0o777, *, dir_fd=None):
        if under(path) and not os.path.isdir(path):
            raise erofs(path)
        return real_mkdir(path, mode, dir_fd=dir_fd)

    def start(directory):
        where.append(os.path.abspath(os.fspath(directory)))
        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
        monkeypatch.setattr(os, "mkdir", mkdir)

    return start
