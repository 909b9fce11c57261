import numpy as np
import pytest

from pyadml.data.text_negatives import NearMissTexts, check_text_negatives

PHONES = {
    "bat": "B AE1 T", "cat": "K AE1 T", "cap": "K AE1 P", "cab": "K AE1 B", "bit": "B IH1 T",
    "bar": "B AA1 R", "tab": "T AE1 B", "dog": "D AO1 G", "dogs": "D AO1 G Z",
    "catalog": "K AE1 T AH0 L AO2 G", "batt": "B AE1 T",  # "batt": a homophone of "bat"
}


def phones_of(word):
    return PHONES[word].split()


def levenshtein(a, b):
    """The textbook dynamic programme, independent of kaldialign."""
    d = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, d[0] = d[0], i
        for j, y in enumerate(b, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (x != y))
    return d[-1]


def test_neighbours_are_the_nearest_by_phoneme_edit_distance_without_homophones():
    near = NearMissTexts(PHONES, phones_of, pool=3)
    for word in PHONES:
        got = near.neighbours(word)
        own = phones_of(word)
        others = [w for w in PHONES if w != word and phones_of(w) != own]
        dist = sorted(levenshtein(own, phones_of(w)) for w in others)
        assert len(got) == 3 and len(set(got)) == 3
        assert sorted(levenshtein(own, phones_of(w)) for w in got) == dist[:3]
        assert word not in got and all(phones_of(w) != own for w in got)
    # hand-worked: bat's words one phone away are cat, bit, batt (a homophone: left out) -> cat, bit
    assert set(NearMissTexts(PHONES, phones_of, pool=2).neighbours("bat")) == {"cat", "bit"}


def test_ties_do_not_depend_on_the_order_of_the_questions():
    a = NearMissTexts(PHONES, phones_of, pool=2)
    b = NearMissTexts(reversed(list(PHONES)), phones_of, pool=2)
    for w in reversed(list(PHONES)):
        b.neighbours(w)
    assert all(a.neighbours(w) == b.neighbours(w) for w in PHONES)


def test_a_near_miss_replaces_one_word_of_a_phrase_by_a_neighbour():
    near = NearMissTexts(PHONES, phones_of, pool=3)
    rng = np.random.default_rng(0)
    positions = set()
    for _ in range(200):
        out = near.near_miss("cat dog bar", rng).split()
        diff = [k for k, (x, y) in enumerate(zip("cat dog bar".split(), out)) if x != y]
        assert len(out) == 3 and len(diff) == 1
        k = diff[0]
        assert out[k] in near.neighbours("cat dog bar".split()[k])
        positions.add(k)
    assert positions == {0, 1, 2}


def test_a_vocabulary_of_one_word_is_refused():
    with pytest.raises(ValueError, match="at least two words"):
        NearMissTexts(["bat"], phones_of)
    # two words with the same phones: nothing to replace either with
    with pytest.raises(ValueError, match="sounds like 'bat'"):
        NearMissTexts(["bat", "batt"], phones_of).neighbours("bat")


@pytest.mark.parametrize("cfg, match", [
    ({"count": -1, "pool": 8, "weight": 1.0, "margin": 0.2, "scale": 10.0}, "count"),
    ({"count": 2, "pool": 0, "weight": 1.0, "margin": 0.2, "scale": 10.0}, "pool"),
    ({"count": 2, "pool": 8, "weight": -1.0, "margin": 0.2, "scale": 10.0}, "weight"),
    ({"count": 2, "pool": 8, "weight": 1.0, "margin": 0.2, "scale": 0}, "scale"),
    ({"count": 2.5, "pool": 8, "weight": 1.0, "margin": 0.2, "scale": 10.0}, "count"),
    ({"count": 2, "pool": 8, "weight": 1.0, "margin": "x", "scale": 10.0}, "margin"),
])
def test_bad_config_is_refused_with_its_key(cfg, match):
    with pytest.raises(ValueError, match=f"loss.text_negatives.{match}"):
        check_text_negatives(cfg)
