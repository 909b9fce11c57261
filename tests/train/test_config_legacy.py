"""Resuming a run whose saved config predates newer keys: a key it lacks is a change only when
the new value changes what that run trained (pyadml.train.config.LEGACY)."""

import copy

import pytest

from pyadml.train.config import DEFAULTS, config_changes, flatten


def _without(cfg, dotted):
    cfg = copy.deepcopy(cfg)
    *path, last = dotted.split(".")
    d = cfg
    for p in path:
        d = d[p]
    del d[last]
    return cfg


def test_keys_an_old_config_lacks_are_changes_only_when_they_change_its_behaviour():
    new = copy.deepcopy(DEFAULTS)
    new["loss"]["mal_opts"]["reduction"] = "sum"
    new["optim"]["grad_clip_scope"] = "encoders"
    old = new
    for key in ("model.head", "loss.all_gather", "loss.mal_opts.reduction", "optim.adams_lr",
                "optim.grad_clip_scope", "loss.key_opts.sphereface2.margin_warmup_type",
                "loss.detector.w_phn", "loss.phn_opts.alpha_max", "batch.span_rows"):
        old = _without(old, key)
    got = config_changes(old, new)
    # Before these keys, MAL averaged the two modalities and clipping covered every parameter.
    assert got == {"loss.mal_opts.reduction": (None, "sum"),
                   "optim.grad_clip_scope": (None, "encoders")}
    new["loss"]["mal_opts"]["reduction"] = "mean"
    new["optim"]["grad_clip_scope"] = "all"
    assert config_changes(old, new) == {}
    # A key the old config has is compared as ever; a new key without a LEGACY entry is a change.
    new["optim"]["lr"] = 1.0
    assert "optim.lr" in config_changes(old, new)
    assert "seed" in config_changes(_without(old, "seed"), new)
    assert flatten(old).keys() < flatten(new).keys()


@pytest.mark.parametrize("key", ["vtlp", "tempo"])
def test_a_run_from_before_a_feature_augmentation_resumes_unless_it_is_turned_on(key):
    new = copy.deepcopy(DEFAULTS)
    new[key]["prob"] = 0.0
    old = _without(new, key)
    assert config_changes(old, new) == {}
    new[key]["prob"] = 0.5
    assert config_changes(old, new) == {f"{key}.prob": (None, 0.5)}


def test_a_run_from_before_the_training_floor_resumes_unless_it_is_turned_on():
    new = copy.deepcopy(DEFAULTS)
    old = _without(new, "floor_db")
    assert config_changes(old, new) == {}
    new["floor_db"] = 50
    assert config_changes(old, new) == {"floor_db": (None, 50)}


def test_a_run_from_before_batch_homophones_resumes_unless_it_merges():
    new = copy.deepcopy(DEFAULTS)
    old = _without(new, "batch.homophones")
    assert config_changes(old, new) == {}
    new["batch"]["homophones"] = "merge"
    assert config_changes(old, new) == {"batch.homophones": (None, "merge")}
