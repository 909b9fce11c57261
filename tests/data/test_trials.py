import pytest

from pyadml.data.trials import (
    Trial, check_pair_trials, make_pair_trials, make_word_trials, read_trials,
    retarget, write_trials,
)


def test_wsj_protocol_counts_labels_and_tags():
    segments = [("s1", "cat"), ("s2", "dog"), ("s3", "cat"), ("s4", "emu"), ("s5", "fox")]
    trials = make_word_trials(segments, train_vocabulary={"cat", "dog"}, negatives_per_positive=3, seed=1)
    # 5 positives, 3 negatives each (4 distinct words, so 3 others exist for every segment)
    assert len(trials) == 5 * 4 and sum(t.label for t in trials) == 5
    by_cut = {}
    for t in trials:
        by_cut.setdefault(t.cut_id, []).append(t)
    for cut_id, word in segments:
        rows = by_cut[cut_id]
        assert [t for t in rows if t.label == 1] == [Trial(cut_id, word, 1, "seen" if word in {"cat", "dog"} else "unseen")]
        negatives = [t.keyword for t in rows if t.label == 0]
        assert len(set(negatives)) == 3 and word not in negatives
    assert {t.tag for t in trials if t.keyword == "emu"} == {"unseen"}


def test_wsj_protocol_caps_negatives_at_the_vocabulary_and_is_seeded():
    segments = [("a", "x"), ("b", "y"), ("c", "z")]
    trials = make_word_trials(segments, set(), negatives_per_positive=50, seed=0)
    assert len(trials) == 3 * 3  # only two other words exist
    big = [(f"s{i}", f"w{i % 60}") for i in range(120)]
    t1 = make_word_trials(big, set(), 50, seed=5)
    assert len(t1) == 120 * 51
    assert t1 == make_word_trials(big, set(), 50, seed=5)
    assert t1 != make_word_trials(big, set(), 50, seed=6)
    with pytest.raises(ValueError, match="two distinct words"):
        make_word_trials([("a", "x")], set())


def test_retarget_appends_the_suffix():
    assert retarget([Trial("s1", "cat", 1, "seen")], "_aug1") == [Trial("s1_aug1", "cat", 1, "seen")]


ROWS = [  # one anchor with its three comparisons, as LibriPhrase lays them out
    dict(anchor_id="A", anchor_text="the river", comparison_id="P", comparison_text="the river",
         target=1, type="diffspk_positive"),
    dict(anchor_id="A", anchor_text="the river", comparison_id="E", comparison_text="town with",
         target=0, type="diffspk_easyneg"),
    dict(anchor_id="A", anchor_text="the river", comparison_id="H", comparison_text="the giver",
         target=0, type="diffspk_hardneg"),
]


def test_libriphrase_four_trials_per_row_by_hand():
    lp = make_pair_trials(ROWS)
    key = lambda ts: sorted((t.cut_id, t.keyword, t.label) for t in ts)  # noqa: E731
    assert key(lp["lp_e"]) == sorted([
        ("A", "the river", 1), ("P", "the river", 1),                 # positive row (deduplicated)
        ("A", "town with", 0), ("E", "town with", 1), ("E", "the river", 0),
    ])
    assert key(lp["lp_h"]) == sorted([
        ("A", "the river", 1), ("P", "the river", 1),
        ("A", "the giver", 0), ("H", "the giver", 1), ("H", "the river", 0),
    ])
    check_pair_trials(lp)


def test_libriphrase_check_catches_unshared_positives():
    lp = make_pair_trials(ROWS)
    lp["lp_h"] = [t for t in lp["lp_h"] if t.cut_id != "P"]
    with pytest.raises(AssertionError, match="positive rows"):
        check_pair_trials(lp)


def test_trial_files_round_trip_and_reject_bad_lines(tmp_path):
    trials = [Trial("s1", "turn on", 1, "seen"), Trial("s1", "cat", 0, "unseen")]
    write_trials(tmp_path / "t.tsv", trials)
    assert (tmp_path / "t.tsv").read_text() == "s1\tturn on\t1\tseen\ns1\tcat\t0\tunseen\n"
    assert read_trials(tmp_path / "t.tsv") == trials
    (tmp_path / "bad.tsv").write_text("s1\tcat\t1\ns2 cat 0\n")
    with pytest.raises(ValueError, match=r"bad.tsv:2"):
        read_trials(tmp_path / "bad.tsv")


def test_a_trial_given_twice_is_refused_naming_both_lines(tmp_path):
    """A hand-written list (or two joined) with a trial twice: counted twice in AP and EER, or
    as a hit and a false alarm at once when its two labels differ."""
    for second in ("s1\tcat\t1", "s1\tcat\t0\tunseen"):
        (tmp_path / "dup.tsv").write_text(f"s1\tcat\t1\ns1\tdog\t0\n{second}\n")
        with pytest.raises(ValueError, match=r"dup.tsv:3: cut 's1' with keyword 'cat' is also on "
                                             r"line 1; give each \(cut, keyword\) trial once"):
            read_trials(tmp_path / "dup.tsv")
    (tmp_path / "ok.tsv").write_text("s1\tcat\t1\ns2\tcat\t0\ns1\tdog\t0\n")
    assert len(read_trials(tmp_path / "ok.tsv")) == 3


def test_a_list_saved_by_a_windows_editor_reads_as_the_plain_one(tmp_path):
    """A byte-order mark became part of the first cut's id ('trial cut not in the set, e.g.
    s1', for a cut that looked present), and a trailing blank line was a bad line; a Latin-1
    list was a UnicodeDecodeError traceback."""
    trials = [Trial("s1", "turn on", 1, "seen"), Trial("s2", "cat", 0, "")]
    (tmp_path / "win.tsv").write_bytes(b"\xef\xbb\xbfs1\tturn on\t1\tseen\r\ns2\tcat\t0\r\n\r\n")
    assert read_trials(tmp_path / "win.tsv") == trials
    (tmp_path / "latin.tsv").write_bytes("s1\tcaf\xe9\t1\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin.tsv: not UTF-8 text"):
        read_trials(tmp_path / "latin.tsv")
