import gzip

import pytest

from pyadml.data.manifests import SetNotFound, find_set_manifest
from pyadml.data.trials import make_set_trials, parse_set_specs


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        f.write("")


def test_a_set_is_found_by_corpus_and_part_with_underscores_in_either(tmp_path):
    touch(tmp_path / "king_asr_066_recordings_train.jsonl.gz")
    touch(tmp_path / "rir_recordings_sim_rir.jsonl.gz")
    assert find_set_manifest(tmp_path, "king_asr_066_train", "recordings").name == \
        "king_asr_066_recordings_train.jsonl.gz"
    assert find_set_manifest(tmp_path, "rir_sim_rir", "recordings").name == \
        "rir_recordings_sim_rir.jsonl.gz"


def test_a_set_name_that_stage_1_did_not_write_names_the_file_it_expected(tmp_path):
    touch(tmp_path / "king_asr_066_recordings_train.jsonl.gz")
    with pytest.raises(SetNotFound) as e:
        find_set_manifest(tmp_path, "mycorpus_train", "supervisions")
    msg = str(e.value)
    assert "set 'mycorpus_train'" in msg and "mycorpus_supervisions_train.jsonl.gz" in msg
    assert "king_asr_066_recordings_train.jsonl.gz" not in msg  # it lists supervisions only
    touch(tmp_path / "a_b_recordings_c.jsonl.gz")
    touch(tmp_path / "a_recordings_b_c.jsonl.gz")
    with pytest.raises(ValueError, match="ambiguous"):
        find_set_manifest(tmp_path, "a_b_c", "recordings")


def test_set_specs_name_the_bad_one():
    assert parse_set_specs(["wsj_test:words", "lp:pairs"]) == [("wsj_test", "words"), ("lp", "pairs")]
    for bad in (["wsj_test"], ["wsj_test:phrases"], [":words"], ["a:words", "a:pairs"]):
        with pytest.raises(ValueError, match="<set>:<protocol>|named twice"):
            parse_set_specs(bad)


def test_trials_for_a_set_without_cuts_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"set 'wsj_test': expected its cuts in .*wsj_test.jsonl.gz"):
        make_set_trials(tmp_path / "cuts", tmp_path / "manifests", tmp_path / "trials", {},
                        "wsj_test", [("wsj_test", "words")])
    with pytest.raises(ValueError, match="augmented test set other"):
        make_set_trials(tmp_path / "cuts", tmp_path / "manifests", tmp_path / "trials", {},
                        "wsj_test", [("wsj_test", "words")], aug_sets=["other"])
