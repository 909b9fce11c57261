"""Pairs and phoneme labels of the detector baselines, against hand-worked examples."""

import pytest
import torch

from pyadml.data.pairs import build_pairs, edit_distance_matrix, phoneme_match_labels

A, B, C, D, E, X = 1, 2, 3, 4, 5, 9


@pytest.mark.parametrize("enrolled, spoken, labels", [
    ([A, B, C], [A, B, C], [1, 1, 1]),          # the keyword itself
    ([A, B, C], [A, X, C], [1, 0, 1]),          # one substitution
    ([A, B, C], [A, X, B, C], [1, 0, 0]),       # an insertion shifts every later position
    ([A, X, B, C], [A, B, C], [1, 0, 0, 0]),    # an enrolled insertion shifts them too
    ([A, B, C, D], [A, B], [1, 1, 0, 0]),       # spoken shorter: past its end is 0
    ([A, B], [A, B, C, D], [1, 1]),             # enrolled shorter: one label per phoneme
    ([B, C], [A, B, C], [0, 0]),                # a suffix does not match position-wise
    ([C, A, B], [A, B, C], [0, 0, 0]),
])
def test_phoneme_labels_by_position(enrolled, spoken, labels):
    assert phoneme_match_labels(enrolled, spoken) == labels


def test_edit_distances():
    d = edit_distance_matrix([[A, B, C], [A, X, B, C], [A, B], [D, E]])
    assert d == [[0, 1, 1, 3], [1, 0, 2, 4], [1, 2, 0, 2], [3, 4, 2, 0]]


TEXTS = [[A, B, C], [A, B, D], [D, E, C], [A, B, C, D, E], [A, B, C]]  # 4 is a homophone of 0


def test_pairs_hand_worked():
    # Utterances 0, 1 say text 0; 2 says 1; 3 says 2. Texts 3 and 4 are in the batch too.
    utt = [0, 0, 1, 2]
    p = build_pairs(utt, TEXTS, mismatches=0, hard_negatives=1,
                    generator=torch.Generator().manual_seed(0))
    # Matched pairs first, then each utterance's nearest different keyword:
    # text 0 [A B C]: 1 [A B D] at 1 (2 and 3 at 2; 4 is a homophone, not a negative);
    # text 1 [A B D]: 0 or 4 at 1 (3 at 2, 2 at 3); text 2 [D E C]: 0 or 4 at 2 (1 at 3, 3 at 4).
    assert p.audio.tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    assert p.text.tolist()[:4] == utt
    assert p.text.tolist()[4:6] == [1, 1]
    assert p.text.tolist()[6] in (0, 4)
    assert p.text.tolist()[7] in (0, 4)
    assert p.label.tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    assert p.phn_label.shape == (8, 5)
    assert p.phn_label[:4].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 0, 0], [1, 1, 1, 0, 0],
                                        [1, 1, 1, 0, 0]]
    # [A B D] enrolled, [A B C] spoken: 1 1 0; [A B C] enrolled, [A B D] spoken: 1 1 0;
    # [A B C] enrolled, [D E C] spoken: 0 0 1.
    assert p.phn_label[4].tolist() == [1, 1, 0, 0, 0]
    assert p.phn_label[6].tolist() == [1, 1, 0, 0, 0]
    assert p.phn_label[7].tolist() == [0, 0, 1, 0, 0]


def test_random_mismatches_never_draw_the_spoken_phones():
    g = torch.Generator().manual_seed(1)
    for _ in range(20):
        p = build_pairs([0, 4, 2], TEXTS, mismatches=2, hard_negatives=0, generator=g)
        assert p.audio.tolist()[3:] == [0, 0, 1, 1, 2, 2]
        for i, j, lab in zip(p.audio.tolist()[3:], p.text.tolist()[3:], p.label.tolist()[3:]):
            spoken = [0, 4, 2][i]
            assert TEXTS[j] != TEXTS[spoken] and lab == 0
        assert len(set(p.text.tolist()[3:5])) == 2  # without replacement


def test_a_batch_of_one_keyword_has_no_negatives():
    p = build_pairs([0, 0], [[A, B]], mismatches=1, hard_negatives=1)
    assert p.label.tolist() == [1, 1] and p.phn_label.tolist() == [[1, 1], [1, 1]]
