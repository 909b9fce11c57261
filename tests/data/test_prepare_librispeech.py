"""The LibriSpeech preparer on hand-written files: librispeech-alignments' .alignment.txt and
MFA TextGrids (long and short format), with words the aligner marked as silence or unknown."""

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pyadml.data.cuts import make_word_cuts
from pyadml.data.prepare import CorpusError, get_preparer, prepare_corpus
from pyadml.data.prepare.librispeech import (
    SpeakerOverlap,
    check_disjoint_speakers,
    clean_alignment,
    parse_part,
    read_alignment_txt,
    read_speakers,
    read_textgrid,
    textgrid_words,
)

# Two utterances of speaker 103, chapter 1240; the aligner marked silence ("" and, in the
# TextGrids, sil/sp) and could not align "ANNE" (<unk> / spn).
TRANS = "103-1240-0000 CHAPTER ONE\n103-1240-0001 ANNE IS SURPRISED\n"
ALIGN = ('103-1240-0000 ",CHAPTER,ONE," "0.300,0.700,1.100,1.300"\n'
         '103-1240-0001 ",<unk>,,IS,SURPRISED," "0.200,0.600,0.800,1.000,1.600,1.800"\n')
SPEAKERS = (";ID  |SEX| SUBSET           |MINUTES| NAME\n"
            "103  | F | train-clean-100  | 25.00 | Some Reader\n")
EXPECT = {
    "103-1240-0000": [("chapter", 0.3, 0.4), ("one", 0.7, 0.4)],
    "103-1240-0001": [("<unk>", 0.2, 0.4), ("is", 0.8, 0.2), ("surprised", 1.0, 0.6)],
}

TG_LONG = '''File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 1.8
tiers? <exists>
size = 2
item []:
    item [1]:
        class = "IntervalTier"
        name = "words"
        xmin = 0
        xmax = 1.8
        intervals: size = 6
        intervals [1]:
            xmin = 0
            xmax = 0.2
            text = ""
        intervals [2]:
            xmin = 0.2
            xmax = 0.6
            text = "spn"
        intervals [3]:
            xmin = 0.6
            xmax = 0.8
            text = "sil"
        intervals [4]:
            xmin = 0.8
            xmax = 1.0
            text = "is"
        intervals [5]:
            xmin = 1.0
            xmax = 1.6
            text = "surprised"
        intervals [6]:
            xmin = 1.6
            xmax = 1.8
            text = "sp"
    item [2]:
        class = "IntervalTier"
        name = "phones"
        xmin = 0
        xmax = 1.8
        intervals: size = 1
        intervals [1]:
            xmin = 0
            xmax = 1.8
            text = "x"
'''
TG_SHORT = '''File type = "ooTextFile"
Object class = "TextGrid"

0
1.3
<exists>
1
"IntervalTier"
"words"
0
1.3
4
0
0.3
""
0.3
0.7
"chapter"
0.7
1.1
"one"
1.1
1.3
""
'''


def _flac(path, seconds):
    path.parent.mkdir(parents=True, exist_ok=True)
    x = 0.01 * np.random.default_rng(0).standard_normal(int(16000 * seconds))
    sf.write(path, x, 16000, format="FLAC", subtype="PCM_16")


def corpus(tmp_path, alignment="txt"):
    root = tmp_path / "LibriSpeech"
    chap = root / "train-clean-100" / "103" / "1240"
    _flac(chap / "103-1240-0000.flac", 1.3)
    _flac(chap / "103-1240-0001.flac", 1.8)
    (chap / "103-1240.trans.txt").write_text(TRANS)
    (root / "SPEAKERS.TXT").write_text(SPEAKERS)
    if alignment == "txt":
        (chap / "103-1240.alignment.txt").write_text(ALIGN)
    elif alignment == "textgrid":
        ali = tmp_path / "mfa" / "train-clean-100" / "103"
        ali.mkdir(parents=True)
        (ali / "103-1240-0000.TextGrid").write_text(TG_SHORT)
        (ali / "103-1240-0001.TextGrid").write_text(TG_LONG)
    return root


def _words(sup):
    return [(w.symbol, round(w.start, 3), round(w.duration, 3)) for w in sup.alignment["word"]]


def test_alignment_txt_is_read_by_lhotse_with_silence_as_empty_words(tmp_path):
    p = tmp_path / "x.alignment.txt"
    p.write_text(ALIGN)
    ali = read_alignment_txt(p)
    assert [w.symbol for w in ali["103-1240-0001"]] == ["", "<unk>", "", "IS", "SURPRISED", ""]
    assert ali["103-1240-0000"][1].start == pytest.approx(0.3)


def test_files_saved_by_a_windows_editor_give_the_same_manifests(tmp_path):
    """A byte-order mark, CRLF line ends and blank lines in .trans.txt and .alignment.txt read as
    if absent (before: lhotse's readers stopped at a blank line with 'not enough values to
    unpack', and the mark made the first utterance's alignment silently missing)."""
    from lhotse.recipes.librispeech import parse_alignments

    p = tmp_path / "x.alignment.txt"
    p.write_text(ALIGN)
    assert read_alignment_txt(p) == parse_alignments(p)  # lhotse's items, exactly
    clean = prepare_corpus("librispeech", corpus(tmp_path / "a"), None, part="train-clean-100")
    root = corpus(tmp_path / "b")
    chap = root / "train-clean-100" / "103" / "1240"
    for name, text in (("103-1240.trans.txt", TRANS), ("103-1240.alignment.txt", ALIGN)):
        lines = text.splitlines()
        (chap / name).write_bytes(("\ufeff" + lines[0] + "\r\n\r\n" + lines[1] + "\r\n\r\n")
                                  .encode("utf-8"))
    edited = prepare_corpus("librispeech", root, None, part="train-clean-100")
    assert edited["stats"] == clean["stats"]
    assert {s.id: (_words(s), s.text) for s in edited["supervisions"]} == {
        s.id: (_words(s), s.text) for s in clean["supervisions"]}


@pytest.mark.parametrize("line,message", [
    ('u1 ",A," "0.1,0.2"', "3 words but 2 end times"),
    ('u1 ",A,"', "3 fields"),
    ('u1 ",A," "0.1,x,0.3"', "must be numbers"),
    ('u1 ",A," "0.3,0.2,0.4"', "precedes"),
])
def test_a_malformed_alignment_line_is_an_error_with_its_line_number(tmp_path, line, message):
    p = tmp_path / "x.alignment.txt"
    p.write_text('u0 ",A," "0.1,0.2,0.3"\n' + line + "\n")
    with pytest.raises(CorpusError, match=rf"x.alignment.txt:2: .*{message}"):
        read_alignment_txt(p)


def test_textgrid_long_and_short_formats(tmp_path):
    (tmp_path / "l.TextGrid").write_text(TG_LONG)
    (tmp_path / "s.TextGrid").write_text(TG_SHORT)
    tiers = read_textgrid(tmp_path / "l.TextGrid")
    assert list(tiers) == ["words", "phones"]
    assert [t for _, _, t in tiers["words"]] == ["", "spn", "sil", "is", "surprised", "sp"]
    words = textgrid_words(tmp_path / "s.TextGrid")
    assert [(w.symbol, w.start, w.duration) for w in words] == [
        ("", 0.0, 0.3), ("chapter", 0.3, 0.4), ("one", 0.7, 0.4), ("", 1.1, 0.2)]
    # UTF-16, as Praat itself may save, reads the same
    (tmp_path / "u.TextGrid").write_bytes(TG_LONG.encode("utf-16"))
    assert read_textgrid(tmp_path / "u.TextGrid") == tiers


def test_textgrid_without_a_word_tier_is_an_error(tmp_path):
    (tmp_path / "p.TextGrid").write_text(TG_SHORT.replace('"words"', '"phones"'))
    with pytest.raises(CorpusError, match="one word tier named 'words'.*phones"):
        textgrid_words(tmp_path / "p.TextGrid")
    (tmp_path / "n.TextGrid").write_text("hello\n")
    with pytest.raises(CorpusError, match="not a Praat TextGrid"):
        read_textgrid(tmp_path / "n.TextGrid")


def test_clean_alignment_drops_silence_keeps_unknown_and_checks_the_transcript(tmp_path):
    from collections import Counter

    from lhotse.supervision import AlignmentItem as A

    stats = Counter()
    items = [A("", 0, 0.2), A("spn", 0.2, 0.4), A("sil", 0.6, 0.2), A("IS", 0.8, 0.2),
             A("Surprised", 1.0, 0.6), A("sp", 1.6, 0.2)]
    out = clean_alignment(items, ["ANNE", "IS", "SURPRISED"], "f", "u", stats)
    assert [i.symbol for i in out] == ["<unk>", "is", "surprised"]
    assert stats == {"silence": 3, "unknown": 1, "words": 3}
    with pytest.raises(CorpusError, match="aligned word 2 'is' does not match transcript word 'WAS'"):
        clean_alignment(items, ["ANNE", "WAS", "SURPRISED"], "f", "u", Counter())
    with pytest.raises(CorpusError, match="the alignment has 3 words .* the transcript has 2"):
        clean_alignment(items, ["IS", "SURPRISED"], "f", "u", Counter())


@pytest.mark.parametrize("alignment", ["txt", "textgrid"])
def test_prepare_both_formats_give_the_same_manifests(tmp_path, alignment):
    root = corpus(tmp_path, alignment)
    out = tmp_path / "manifests"
    opts = {"ctm": str(tmp_path / "mfa")} if alignment == "textgrid" else {}
    m = prepare_corpus("librispeech", root, out, part="train-clean-100", **opts)
    sups = {s.id: s for s in m["supervisions"]}
    assert {k: _words(s) for k, s in sups.items()} == EXPECT
    s = sups["103-1240-0001"]
    assert (s.speaker, s.gender, s.text) == ("103", "F", "anne is surprised")
    assert m["stats"]["unknown"] == 1 and m["stats"]["silence"] == 5
    assert (out / "librispeech_recordings_train_clean_100.jsonl.gz").is_file()
    with gzip.open(out / "librispeech_supervisions_train_clean_100.jsonl.gz", "rt") as f:
        assert len([json.loads(x) for x in f]) == 2
    # Stage 2: the unknown word is dropped and counted, silence never reaches it.
    cuts, st = make_word_cuts(m["recordings"], m["supervisions"])
    assert sorted(c.supervisions[0].text for c in cuts) == ["chapter", "is", "one", "surprised"]
    assert st.dropped == {"unknown_or_noise_token": 1}


def test_prepare_combines_subsets_into_one_named_set(tmp_path):
    root = corpus(tmp_path)
    chap = root / "train-clean-360" / "200" / "7"
    _flac(chap / "200-7-0000.flac", 1.0)
    (chap / "200-7.trans.txt").write_text("200-7-0000 ONE\n")
    (chap / "200-7.alignment.txt").write_text('200-7-0000 ",ONE," "0.2,0.8,1.0"\n')
    m = prepare_corpus("librispeech", tmp_path, tmp_path / "m", part="train=train-clean-100,train-clean-360")
    assert sorted(s.speaker for s in m["supervisions"]) == ["103", "103", "200"]
    assert (tmp_path / "m" / "librispeech_supervisions_train.jsonl.gz").is_file()


def test_missing_audio_and_mismatched_alignment_are_errors_naming_the_file(tmp_path):
    root = corpus(tmp_path)
    chap = root / "train-clean-100" / "103" / "1240"
    (chap / "103-1240-0001.flac").unlink()
    with pytest.raises(CorpusError, match=r"103-1240.trans.txt:2: no audio .*103-1240-0001.flac"):
        prepare_corpus("librispeech", root, None, part="train-clean-100")
    _flac(chap / "103-1240-0001.flac", 1.8)
    (chap / "103-1240.alignment.txt").write_text(ALIGN.replace("CHAPTER", "CHAPTERS"))
    with pytest.raises(CorpusError, match=r"103-1240.alignment.txt: utterance 103-1240-0000: aligned "
                                          r"word 1 'chapters' does not match"):
        prepare_corpus("librispeech", root, None, part="train-clean-100")
    (chap / "103-1240.alignment.txt").unlink()
    with pytest.raises(CorpusError, match="no word alignments for train-clean-100"):
        prepare_corpus("librispeech", root, None, part="train-clean-100")


def test_a_subset_the_alignments_do_not_cover_is_an_error_not_unaligned(tmp_path):
    """TextGrids of train-clean-100 only, for a set of train-clean-100 and train-clean-360: the
    second subset is named (before: every utterance of it was kept unaligned, counted in the
    log, and the set trained on the first subset alone)."""
    root = corpus(tmp_path, "textgrid")
    chap = root / "train-clean-360" / "200" / "7"
    _flac(chap / "200-7-0000.flac", 1.3)
    (chap / "200-7.trans.txt").write_text("200-7-0000 ONE\n")
    with pytest.raises(CorpusError, match=r"mfa: none of the 1 utterances of train-clean-360 has an "
                                          r"alignment there \(the 2 <utterance>.TextGrid file\(s\) under "
                                          r"it are of other utterances, e.g. .*103-1240-0000.TextGrid\); "
                                          r"align train-clean-360 too"):
        prepare_corpus("librispeech", root, None, part="train=train-clean-100,train-clean-360",
                       ctm=str(tmp_path / "mfa"))
    # One aligned utterance in the subset is enough: the rest are the aligner's failures.
    ali = tmp_path / "mfa" / "train-clean-360" / "200"
    ali.mkdir(parents=True)
    (ali / "200-7-0000.TextGrid").write_text(TG_SHORT.replace('"chapter"', '""'))
    (chap / "200-7-0001.flac").write_bytes((chap / "200-7-0000.flac").read_bytes())
    (chap / "200-7.trans.txt").write_text("200-7-0000 ONE\n200-7-0001 TWO\n")
    m = prepare_corpus("librispeech", root, None, part="train=train-clean-100,train-clean-360",
                       ctm=str(tmp_path / "mfa"))
    assert m["stats"]["unaligned_utterances"] == 1


def test_two_textgrids_of_one_utterance_are_an_error_naming_both(tmp_path):
    """Two aligner runs under one alignments directory (before: the later file in sorted order
    was used, silently)."""
    root = corpus(tmp_path, "textgrid")
    old = tmp_path / "mfa" / "train-clean-100" / "old_run" / "103"
    old.mkdir(parents=True)
    (old / "103-1240-0000.TextGrid").write_text(TG_SHORT)
    with pytest.raises(CorpusError, match=r"old_run/103/103-1240-0000.TextGrid: a second TextGrid of "
                                          r"utterance 103-1240-0000 \(the first: .*mfa/train-clean-100/"
                                          r"103/103-1240-0000.TextGrid\); keep one of them"):
        prepare_corpus("librispeech", root, None, part="train-clean-100", ctm=str(tmp_path / "mfa"))


def test_stage_1_lists_the_directories_it_searched(tmp_path):
    """prepare_manifests --inputs-list names the subset and alignments directories searched
    (utils/stage.sh then reruns stage 1 when a file is added under one: a chapter unpacked
    after an interrupted tar, or the TextGrids of utterances the aligner had skipped)."""
    from pyadml.bin import prepare_manifests

    root = corpus(tmp_path, "textgrid")
    listed = tmp_path / "inputs.txt"
    assert prepare_manifests.main(["librispeech", str(root), str(tmp_path / "m"), "--part",
                                   "train-clean-100", "--ctm", str(tmp_path / "mfa"),
                                   "--inputs-list", str(listed)]) == 0
    names = listed.read_text().splitlines()
    assert str(root / "train-clean-100") in names and str(tmp_path / "mfa" / "train-clean-100") in names
    assert str(root / "train-clean-100" / "103" / "1240" / "103-1240.trans.txt") in names


@pytest.mark.parametrize("alignment", ["txt", "textgrid"])
def test_a_symlinked_speaker_directory_is_read_as_a_copy_would_be(tmp_path, alignment):
    """A speaker's directory linked in from another disk, its TextGrids too (before: lhotse's
    Path.rglob did not follow the link, and its utterances were silently left out beside the
    other speakers'; here, with only this speaker, 'no transcripts')."""
    opts = {"ctm": str(tmp_path / "b" / "mfa")} if alignment == "textgrid" else {}
    copy = prepare_corpus("librispeech", corpus(tmp_path / "a", alignment), None,
                          part="train-clean-100",
                          **({"ctm": str(tmp_path / "a" / "mfa")} if opts else {}))
    root = corpus(tmp_path / "b", alignment)
    disk = tmp_path / "disk"
    disk.mkdir()
    for i, d in enumerate([root / "train-clean-100" / "103"] + (
            [tmp_path / "b/mfa/train-clean-100/103"] if opts else [])):
        d.rename(disk / str(i))
        d.symlink_to(disk / str(i), target_is_directory=True)
    linked = prepare_corpus("librispeech", root, None, part="train-clean-100", **opts)
    assert linked["stats"] == copy["stats"] and linked["stats"]["utterances"] == 2
    assert {s.id: (_words(s), s.text, s.speaker) for s in linked["supervisions"]} == {
        s.id: (_words(s), s.text, s.speaker) for s in copy["supervisions"]}


def test_a_subset_without_any_of_its_audio_is_named(tmp_path):
    """Every .flac missing (the transcripts unpacked alone): the first line and the count
    (before: lhotse's 'AssertionError: No recordings left after fixing the manifests')."""
    root = corpus(tmp_path)
    for f in (root / "train-clean-100").rglob("*.flac"):
        f.unlink()
    with pytest.raises(CorpusError, match=r"103-1240.trans.txt:1: no audio .*103-1240-0000.flac for "
                                          r"utterance 103-1240-0000 \(2 utterance\(s\) of "
                                          r"train-clean-100 have none\)"):
        prepare_corpus("librispeech", root, None, part="train-clean-100")


def test_a_training_subset_the_corpus_lacks_says_how_to_train_on_those_it_has(tmp_path):
    """Only train-clean-100 downloaded, the recipe's default train-clean-100 + train-clean-360
    (before: the subsets it has, but not how to train on them)."""
    root = corpus(tmp_path)
    with pytest.raises(CorpusError, match=r"train-clean-360: LibriSpeech subset train-clean-360 does "
                                          r"not exist \(this corpus has: train-clean-100\); train on "
                                          r"the subsets it has with run.sh --train-parts, e.g. "
                                          r'--train-parts "train-clean-100"$'):
        prepare_corpus("librispeech", root, None, part="train=train-clean-100,train-clean-360")
    with pytest.raises(CorpusError, match=r"subset test-clean does not exist \(this corpus has: "
                                          r"train-clean-100\)$"):
        prepare_corpus("librispeech", root, None, part="test-clean", ctm="none")


@pytest.mark.parametrize("level", ["subset", "above"])
def test_a_librispeech_path_a_level_off_says_what_it_expected(tmp_path, level):
    """LIBRISPEECH in db.sh naming a subset itself, or a directory two levels above the subsets:
    stage 1 says what it expected (before: that the directory had no test-clean/ for stage 9,
    to add one or run without stage 9; then, that it had 'none' of the subsets)."""
    import os
    import shutil
    import subprocess
    import sys

    root = corpus(tmp_path / "c")
    repo = Path(__file__).resolve().parents[2]
    recipe = tmp_path / "recipe"
    shutil.copytree(repo / "egs/librispeech_libriphrase/local", recipe / "local")
    (recipe / "utils").symlink_to(repo / "utils")
    wrong = root / "train-clean-100" if level == "subset" else tmp_path
    (recipe / "db.sh").write_text(f'LIBRISPEECH="{wrong}"\n')
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
               PYTHONPATH=str(repo))
    res = subprocess.run(["bash", "local/prepare_manifests.sh", "--train-parts", "train-clean-100",
                          "--continuous-part", "test-clean", "--disjoint-sets", "", "synth", "out"],
                         cwd=recipe, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "test-clean" not in res.stderr, res.stderr
    assert f"{wrong} holds no LibriSpeech subset: expected the LibriSpeech directory " \
           f"(SPEAKERS.TXT, train-clean-100/, ...) or the one above it" in res.stderr
    assert (f"{wrong} is itself the subset train-clean-100: name its parent, {root}" in res.stderr) \
        == (level == "subset")
    assert not (recipe / "out").exists()


@pytest.mark.parametrize("named", ["above", "subset"])
def test_alignments_named_a_level_off_say_which_directory_to_name(tmp_path, named):
    """LIBRISPEECH_ALIGNMENTS naming the directory above the unpacked zip's LibriSpeech/, or the
    subset itself (before: that the files must lie in <dir>/<subset>/..., not which dir that is)."""
    root = corpus(tmp_path)
    chap = root / "train-clean-100" / "103" / "1240"
    holder = tmp_path / "ali" / "zip" / "LibriSpeech"
    (holder / "train-clean-100/103/1240").mkdir(parents=True)
    (chap / "103-1240.alignment.txt").rename(holder / "train-clean-100/103/1240/103-1240.alignment.txt")
    ctm = tmp_path / "ali" if named == "above" else holder / "train-clean-100"
    with pytest.raises(CorpusError, match=rf"{ctm}: .alignment.txt files must lie in "
                                          rf"<dir>/train-clean-100/<spk>/<chapter>/, .* \(e.g. .*"
                                          rf"103-1240.alignment.txt\): name {holder}, which holds "
                                          rf"train-clean-100/$"):
        prepare_corpus("librispeech", root, None, part="train-clean-100", ctm=str(ctm))
    m = prepare_corpus("librispeech", root, None, part="train-clean-100", ctm=str(holder))
    assert m["stats"]["unaligned_utterances"] == 0


def test_an_utterance_the_aligner_skipped_has_no_alignment(tmp_path):
    root = corpus(tmp_path)
    (root / "train-clean-100/103/1240/103-1240.alignment.txt").write_text(ALIGN.splitlines()[0] + "\n")
    m = get_preparer("librispeech")(root, None, part="train-clean-100")
    assert m["stats"]["unaligned_utterances"] == 1
    _, st = make_word_cuts(m["recordings"], m["supervisions"])
    assert st.no_alignment == 1 and st.kept == 2


def test_no_alignments_reads_whole_utterances(tmp_path):
    """ctm="none" (stage 1's continuous speech): the transcripts and audio, no word times, even
    where alignment files lie beside them; a corpus without alignments is no error then."""
    root = corpus(tmp_path)
    with_ali = get_preparer("librispeech")(root, None, part="train-clean-100")
    m = get_preparer("librispeech")(root, None, part="train-clean-100", ctm="none")
    assert m["stats"]["unaligned_utterances"] == m["stats"]["utterances"] == 2
    assert [(s.id, s.text, s.speaker) for s in m["supervisions"]] == [
        (s.id, s.text, s.speaker) for s in with_ali["supervisions"]]
    assert all(s.alignment is None for s in m["supervisions"])
    (root / "train-clean-100/103/1240/103-1240.alignment.txt").unlink()
    assert get_preparer("librispeech")(root, None, part="train-clean-100", ctm="none")[
        "stats"]["utterances"] == 2


def test_parse_part_and_speakers_file(tmp_path):
    assert parse_part("train-clean-100") == ("train_clean_100", ["train-clean-100"])
    assert parse_part("train=train-clean-100,train-clean-360")[1] == ["train-clean-100", "train-clean-360"]
    with pytest.raises(CorpusError, match="name it"):
        parse_part("train-clean-100,train-clean-360")
    with pytest.raises(CorpusError, match="unknown subset"):
        parse_part("train-clean-999")
    (tmp_path / "S").write_text(SPEAKERS + "bad line\n")
    with pytest.raises(CorpusError, match=r"S:3: expected 'ID \| SEX"):
        read_speakers(tmp_path / "S")


def test_speaker_check_names_the_speakers_a_test_set_shares_with_training(tmp_path):
    root = corpus(tmp_path)
    out = tmp_path / "m"
    prepare_corpus("librispeech", root, out, part="train=train-clean-100")
    rows = [{"anchor_spk": "103", "comparison_spk": "55"}, {"anchor_spk": "56", "comparison_spk": "57"}]
    with gzip.open(out / "libriphrase_pairs_test.jsonl.gz", "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    with gzip.open(out / "libriphrase_supervisions_test.jsonl.gz", "wt") as f:
        f.write(json.dumps({"id": "a", "speaker": "56"}) + "\n")
    with pytest.raises(SpeakerOverlap, match=r"librispeech_train and test set libriphrase_test share "
                                             r"1 speaker\(s\): 103\. .*train-other-500"):
        check_disjoint_speakers(out, "librispeech_train", ["libriphrase_test"])
    rows[0]["anchor_spk"] = "58"
    with gzip.open(out / "libriphrase_pairs_test.jsonl.gz", "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    assert check_disjoint_speakers(out, "librispeech_train", ["libriphrase_test"]) == {
        "librispeech_train": 1, "libriphrase_test": 4}
    # a LibriSpeech test subset (stage 9's test-clean) that shares a speaker: no LibriPhrase hint
    prepare_corpus("librispeech", root, out, part="test=train-clean-100", ctm="none")
    with pytest.raises(SpeakerOverlap, match=r"librispeech_train and test set librispeech_test "
                                             r"share 1 speaker\(s\): 103\. train without the subset"):
        check_disjoint_speakers(out, "librispeech_train", ["libriphrase_test", "librispeech_test"])


def test_corpora_named_by_relative_paths_give_manifests_that_load_from_anywhere(tmp_path, monkeypatch):
    """db.sh's LIBRISPEECH=../corpora/LibriSpeech (and MUSAN, RIRS_NOISES): the manifests held
    the relative paths, which failed to load once the recipe was copied or run from elsewhere."""
    from lhotse import load_manifest

    from pyadml.data.prepare.musan import prepare_musan
    from pyadml.data.prepare.rirs_noises import prepare_rir_noise

    corpus(tmp_path / "corpora")
    for name, part in (("music", "music"), ("noise", "noise")):
        _flac(tmp_path / "corpora" / "musan" / part / "x" / f"{name}-x-0000.flac", 0.3)
    sf.write(tmp_path / "corpora" / "musan" / "noise" / "x" / "noise-x-0001.wav",
             np.zeros(4800), 16000)
    (tmp_path / "corpora" / "musan" / "music" / "x" / "music-x-0000.flac").unlink()
    (tmp_path / "corpora" / "musan" / "noise" / "x" / "noise-x-0000.flac").unlink()
    rir = tmp_path / "corpora" / "RIRS_NOISES" / "simulated_rirs" / "smallroom" / "Room001"
    rir.mkdir(parents=True)
    sf.write(rir / "Room001-00001.wav", np.zeros(4800), 16000)
    (tmp_path / "recipe").mkdir()
    monkeypatch.chdir(tmp_path / "recipe")
    out = tmp_path / "recipe" / "manifests"
    prepare_corpus("librispeech", "../corpora/LibriSpeech", out, part="train-clean-100")
    prepare_musan("../corpora/musan", out)
    prepare_rir_noise("../corpora/RIRS_NOISES", out)
    monkeypatch.chdir(tmp_path)  # elsewhere: every source must still be found
    # the parts of MUSAN and RIRS_NOISES with no wavs get empty manifests
    files = [f for f in sorted(out.glob("*recordings*.jsonl.gz")) if len(load_manifest(f))]
    assert len(files) == 3
    for f in files:
        for rec in load_manifest(f):
            source = rec.sources[0].source
            assert Path(source).is_absolute() and Path(source).is_file(), (f.name, source)
            rec.load_audio()
