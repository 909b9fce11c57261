"""pyadml.data.prepare.registry: corpora by name, plugin files that add corpora, the built-in
``kaldi`` corpus, and the CLI's errors for unknown corpora, options and plugin files."""

from __future__ import annotations

import gzip
import textwrap
from pathlib import Path

import pytest
from lhotse import load_manifest

from pyadml.bin import prepare_manifests
from pyadml.data.prepare import (
    CorpusError,
    corpora,
    get_preparer,
    load_plugin,
    prepare_corpus,
    prepare_wsj,
    register_corpus,
)
from pyadml.data.prepare import registry
from test_prepare import SR, lines, wav  # tests/data is on sys.path under pytest

BUILT_IN = ["kaldi", "king_asr_066", "libriphrase", "librispeech", "musan", "rirs_noises", "wsj"]

# A recipe's local/prepare_mycorpus.py: a directory of wavs plus prompts.txt "<stem> <words>".
PLUGIN = textwrap.dedent('''
    from pathlib import Path

    from lhotse import Recording, RecordingSet, SupervisionSegment, SupervisionSet

    from pyadml.data.prepare import CorpusError, register_corpus, write_manifest


    @register_corpus("mycorpus")
    def prepare(corpus_dir, output_dir=None, part="dev"):
        corpus_dir = Path(corpus_dir)
        prompts = corpus_dir / "prompts.txt"
        if not prompts.is_file():
            raise CorpusError(f"{prompts}: missing")
        recs, sups = [], []
        for line in prompts.read_text().splitlines():
            stem, text = line.split(maxsplit=1)
            rec = Recording.from_file(corpus_dir / f"{stem}.wav", recording_id=stem)
            recs.append(rec)
            sups.append(SupervisionSegment(id=stem, recording_id=stem, start=0.0,
                                           duration=rec.duration, text=text.lower()))
        recs, sups = RecordingSet.from_recordings(recs), SupervisionSet.from_segments(sups)
        if output_dir is not None:
            write_manifest(Path(output_dir) / f"mycorpus_recordings_{part}.jsonl.gz", recs)
            write_manifest(Path(output_dir) / f"mycorpus_supervisions_{part}.jsonl.gz", sups)
        return {"recordings": recs, "supervisions": sups}
''')


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch):
    """Registrations made by a test (plugins) are undone after it."""
    monkeypatch.setattr(registry, "_PREPARERS", dict(registry._PREPARERS))


@pytest.fixture
def plugin(tmp_path) -> Path:
    return lines(tmp_path / "local" / "prepare_mycorpus.py", PLUGIN)


@pytest.fixture
def mycorpus(tmp_path) -> Path:
    d = tmp_path / "mycorpus"
    wav(d / "p1.wav", 0.5)
    wav(d / "p2.wav", 0.75)
    return lines(d / "prompts.txt", "p1 Hey Pyadml", "p2 stop").parent


@pytest.fixture
def kaldi_dir(tmp_path) -> Path:
    """u1 (1.0 s) 'hello world', u2 (0.5 s) 'yes', with a word CTM."""
    d = tmp_path / "kaldi" / "data"
    lines(d / "wav.scp", f"u1 {wav(tmp_path / 'kaldi' / 'wav' / 'u1.wav', 1.0)}",
          f"u2 {wav(tmp_path / 'kaldi' / 'wav' / 'u2.wav', 0.5)}")
    lines(d / "text", "u1 HELLO world", "u2 yes")
    lines(d / "utt2spk", "u1 s1", "u2 s2")
    lines(d / "words.ctm", "u1 1 0.10 0.30 hello", "u1 1 0.50 0.40 world", "u2 1 0.05 0.30 yes")
    return d


def test_built_in_corpora_are_registered():
    assert corpora() == BUILT_IN
    assert get_preparer("wsj") is prepare_wsj


def test_plugin_corpus_through_cli(plugin, mycorpus, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["mycorpus", str(mycorpus), str(out), "--plugin", str(plugin), "--part", "eval"]
    assert prepare_manifests.main(argv) == 0
    stdout = capsys.readouterr().out
    assert "mycorpus eval: 2 recordings, 2 supervisions" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["mycorpus_recordings_eval.jsonl.gz",
                                                      "mycorpus_supervisions_eval.jsonl.gz"]
    sups = load_manifest(out / "mycorpus_supervisions_eval.jsonl.gz")
    assert sups["p1"].text == "hey pyadml"
    assert load_manifest(out / "mycorpus_recordings_eval.jsonl.gz")["p2"].num_samples == int(0.75 * SR)
    # Without --part the plugin's default part names the summary line.
    assert prepare_manifests.main(argv[:-2]) == 0
    assert "mycorpus dev: 2 recordings" in capsys.readouterr().out


def test_plugin_loaded_twice_and_function_form(plugin):
    load_plugin(plugin)
    load_plugin(plugin)  # the same file again re-registers the same function
    assert "mycorpus" in corpora()

    def prepare_other(corpus_dir, output_dir=None):
        return {}

    assert register_corpus("other", prepare_other) is prepare_other
    assert get_preparer("other") is prepare_other
    with pytest.raises(CorpusError, match="'wsj' is already registered by pyadml.data.prepare.wsj"):
        register_corpus("wsj", prepare_other)


def test_kaldi_corpus(kaldi_dir, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["kaldi", str(kaldi_dir), str(out), "--ctm", str(kaldi_dir / "words.ctm"),
            "--name", "mini", "--part", "dev"]
    assert prepare_manifests.main(argv) == 0
    stdout = capsys.readouterr().out
    assert "mini dev: 2 recordings, 2 supervisions" in stdout and "3 aligned words" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["mini_recordings_dev.jsonl.gz",
                                                      "mini_supervisions_dev.jsonl.gz"]
    sups = load_manifest(out / "mini_supervisions_dev.jsonl.gz")
    assert sups["u1"].text == "hello world" and sups["u1"].speaker == "s1"
    assert [w.symbol for w in sups["u1"].alignment["word"]] == ["hello", "world"]
    assert [w.start for w in sups["u1"].alignment["word"]] == pytest.approx([0.10, 0.50])
    assert load_manifest(out / "mini_recordings_dev.jsonl.gz")["u2"].num_samples == SR // 2


def test_kaldi_corpus_defaults(kaldi_dir, tmp_path):
    out = tmp_path / "out"
    m = prepare_corpus("kaldi", kaldi_dir, out)
    assert m["supervisions"]["u2"].alignment is None  # no CTM, no alignment
    assert sorted(p.name for p in out.iterdir()) == ["kaldi_recordings_train.jsonl.gz",
                                                      "kaldi_supervisions_train.jsonl.gz"]
    # Errors are prepare_kaldi_dir's own, naming the file and line.
    lines(kaldi_dir / "words.ctm", "u1 1 0.10 0.30 hello")
    with pytest.raises(CorpusError, match="u1 has 2 words"):
        prepare_corpus("kaldi", kaldi_dir, ctm=kaldi_dir / "words.ctm")


def test_unknown_corpus(tmp_path, capsys):
    assert prepare_manifests.main(["nosuch", str(tmp_path), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("prepare_manifests: ") and "'nosuch'" in err
    assert all(name in err for name in BUILT_IN)
    assert not (tmp_path / "out").exists()


def test_option_the_preparer_does_not_take(plugin, tmp_path, capsys):
    assert prepare_manifests.main(["king_asr_066", str(tmp_path), str(tmp_path / "o"),
                                   "--part", "dev"]) == 1
    err = capsys.readouterr().err
    assert "'king_asr_066'" in err and "'part'" in err and "takes no options" in err
    assert prepare_manifests.main(["mycorpus", str(tmp_path), str(tmp_path / "o"),
                                   "--plugin", str(plugin), "--ctm", "x.ctm"]) == 1
    err = capsys.readouterr().err
    assert "'mycorpus'" in err and "'ctm'" in err and "its options are part" in err


def test_bad_plugin_files(tmp_path, capsys):
    missing = tmp_path / "local" / "prepare_nothing.py"
    assert prepare_manifests.main(["kaldi", str(tmp_path), str(tmp_path / "o"),
                                   "--plugin", str(missing)]) == 1
    assert capsys.readouterr().err == f"prepare_manifests: {missing}: plugin file does not exist\n"
    broken = lines(tmp_path / "broken.py", "import no_such_module_for_pyadml")
    with pytest.raises(CorpusError, match=r"broken.py: plugin failed to import: ModuleNotFoundError"):
        load_plugin(broken)
    clash = lines(tmp_path / "clash.py", "from pyadml.data.prepare import register_corpus",
                  "register_corpus('musan', lambda corpus_dir, output_dir=None: {})")
    with pytest.raises(CorpusError, match="'musan' is already registered"):
        load_plugin(clash)
    with pytest.raises(CorpusError, match="plugin is not a file"):
        load_plugin(tmp_path)


def test_several_corpora_in_one_process_equal_each_alone(plugin, mycorpus, kaldi_dir, tmp_path,
                                                         capsys):
    """local/prepare_manifests.sh's form: argument lists separated by ---, prepared in order in
    one process, each corpus's files byte-identical to its own command's; a bad list anywhere
    fails before any corpus is written."""
    one, alone = tmp_path / "one", tmp_path / "alone"
    first = ["kaldi", str(kaldi_dir), "OUT", "--ctm", str(kaldi_dir / "words.ctm"), "--name", "mini"]
    second = ["mycorpus", str(mycorpus), "OUT", "--plugin", str(plugin), "--part", "eval"]
    for argv in (first, second):
        assert prepare_manifests.main([str(alone) if a == "OUT" else a for a in argv]) == 0
    capsys.readouterr()
    both = [str(one) if a == "OUT" else a for a in first + ["---"] + second]
    assert prepare_manifests.main(both) == 0
    printed = capsys.readouterr().out
    assert printed.index("mini train: 2 recordings") < printed.index("mycorpus eval: 2 recordings")
    names = sorted(p.name for p in alone.iterdir())
    assert len(names) == 4 and names == sorted(p.name for p in one.iterdir())
    for name in names:
        assert gzip.decompress((one / name).read_bytes()) == gzip.decompress((alone / name).read_bytes())
    # The second list lacks its output dir: argparse refuses it before the first is prepared.
    bad = tmp_path / "bad"
    with pytest.raises(SystemExit):
        prepare_manifests.main([str(bad) if a == "OUT" else a for a in first] + ["---", "wsj", str(mycorpus)])
    assert "the following arguments are required: output_dir" in capsys.readouterr().err
    assert not bad.exists()
