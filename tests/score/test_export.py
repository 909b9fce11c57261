import numpy as np
import pytest
import torch
import yaml
from torch import nn

from pyadml.bin import export_model as export_cli
from pyadml.models import EcapaConfig, KwsModel, TextEncoderConfig
from pyadml.models.export import FORMAT, average_checkpoints, export_model, load_model
from pyadml.text import G2P, PhoneTable, Tokenizer

PHONES = list(G2P().inventory)
LEXICON = {"hello": ["HH", "EH1", "L", "OW0"], "road": ["R", "OW1", "D"]}
TOKENIZER = Tokenizer(PhoneTable(PHONES), LEXICON)
AUDIO = {"channels": 16, "embed_dim": 16, "se_bottleneck": 8, "attention_bottleneck": 8}
TEXT = {"embed_dim": 16, "hidden": 16, "layers": 1, "out_dim": 16}
FEATURES = {"num_mel_bins": 40, "frame_length": 0.025, "frame_shift": 0.01, "dither": 0.0,
            "mean_norm": True}


class TrainModule(nn.Module):
    """Stands in for the trainer's module: encoders plus training-only heads."""

    def __init__(self, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.audio = KwsModel.from_configs(
            EcapaConfig(**AUDIO), TextEncoderConfig(vocab_size=len(PHONES) + 1, **TEXT)).audio
        self.text = KwsModel.from_configs(
            EcapaConfig(**AUDIO), TextEncoderConfig(vocab_size=len(PHONES) + 1, **TEXT)).text
        self.classifier = nn.Linear(16, 7)
        self.modality = nn.Linear(16, 2)
        self.adams_scale = nn.Parameter(torch.tensor(30.0))


def fake_checkpoint(path, seed, epoch, batches_tracked):
    m = TrainModule(seed)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm1d):  # non-trivial running stats to average
            mod.running_mean.normal_()
            mod.running_var.uniform_(0.5, 2.0)
            mod.num_batches_tracked.fill_(batches_tracked)
    cfg = {"model": {"audio": AUDIO, "text": TEXT}, "average": 2}
    torch.save({"model": m.state_dict(), "config": cfg, "epoch": epoch, "step": 10 * epoch}, path)
    return m.state_dict()


def test_average_is_the_mean_and_int_buffers_take_the_last(tmp_path):
    a = fake_checkpoint(tmp_path / "a.pt", 0, 1, 5)
    b = fake_checkpoint(tmp_path / "b.pt", 1, 2, 9)
    avg = average_checkpoints([tmp_path / "a.pt", tmp_path / "b.pt"])
    assert avg.keys() == a.keys()
    for k, v in avg.items():
        if k.endswith("num_batches_tracked"):
            assert v.dtype == torch.int64 and int(v) == 9
        else:
            assert v.dtype == a[k].dtype
            torch.testing.assert_close(v, (a[k] + b[k]) / 2)
    # A single checkpoint averages to itself.
    one = average_checkpoints([tmp_path / "a.pt"])
    assert all(torch.equal(one[k], a[k]) for k in a)


def test_average_rejects_mismatched_checkpoints(tmp_path):
    fake_checkpoint(tmp_path / "a.pt", 0, 1, 1)
    sd = TrainModule(0).state_dict()
    del sd["classifier.bias"]
    torch.save({"model": sd}, tmp_path / "b.pt")
    with pytest.raises(ValueError, match="differ"):
        average_checkpoints([tmp_path / "a.pt", tmp_path / "b.pt"])
    with pytest.raises(ValueError, match="no checkpoints"):
        average_checkpoints([])


def _export(tmp_path, state):
    return export_model(state, tmp_path / "final.pt", audio_config=AUDIO, text_config=TEXT,
                        tokenizer=TOKENIZER, features=FEATURES,
                        meta={"note": "test", "path": tmp_path})


def test_export_keeps_encoders_only_and_round_trips(tmp_path):
    a = fake_checkpoint(tmp_path / "a.pt", 0, 1, 5)
    blob = _export(tmp_path, a)
    assert all(k.startswith(("audio.", "text.")) for k in blob["model"])
    assert not any(k.startswith(("classifier", "modality", "adams")) for k in blob["model"])

    raw = torch.load(tmp_path / "final.pt", weights_only=True)  # nothing but plain data
    assert raw["format"] == FORMAT
    assert set(raw) == {"format", "model", "audio_config", "text_config", "phones", "lexicon",
                        "g2p", "features", "meta", "scorer", "head_config", "cohort", "checksum"}
    assert raw["scorer"] == "cosine" and raw["head_config"] == {} and raw["cohort"] == []
    assert raw["lexicon"] == LEXICON
    assert raw["phones"] == PHONES and "<eps>" not in raw["phones"]
    assert raw["text_config"]["vocab_size"] == len(PHONES) + 1
    assert raw["meta"]["path"] == str(tmp_path)

    loaded = load_model(tmp_path / "final.pt")
    assert not loaded.model.training
    assert loaded.phone_table.symbols == PhoneTable(PHONES).symbols
    assert loaded.features == FEATURES and loaded.meta["note"] == "test"
    assert loaded.tokenizer == TOKENIZER

    ref = KwsModel.from_configs(EcapaConfig(**AUDIO), TextEncoderConfig(vocab_size=len(PHONES) + 1, **TEXT))
    ref.load_state_dict({k: v for k, v in a.items() if k.startswith(("audio.", "text."))})
    ref.eval()
    torch.manual_seed(5)
    feats, flens = torch.randn(3, 50, 40), torch.tensor([50, 31, 12])
    phones, plens = torch.randint(1, len(PHONES) + 1, (3, 6)), torch.tensor([6, 4, 2])
    with torch.inference_mode():
        torch.testing.assert_close(loaded.model.embed_audio(feats, flens).utt,
                                   ref.embed_audio(feats, flens).utt, rtol=0, atol=0)
        torch.testing.assert_close(loaded.model.embed_text(phones, plens).utt,
                                   ref.embed_text(phones, plens).utt, rtol=0, atol=0)
    # The model's tokenizer: lexicon words as the lexicon says, other words by the G2P.
    assert loaded.phone_ids("Hello!") == loaded.phone_table.encode(LEXICON["hello"])
    assert loaded.phone_ids("people") == loaded.phone_table.encode(G2P()("people"))


def test_format_1_files_still_load_with_the_g2p_alone(tmp_path):
    _export(tmp_path, fake_checkpoint(tmp_path / "a.pt", 0, 1, 5))
    blob = torch.load(tmp_path / "final.pt", weights_only=True)
    blob["format"] = "pyadml-kws/1"
    del blob["lexicon"], blob["checksum"]
    torch.save(blob, tmp_path / "old.pt")
    loaded = load_model(tmp_path / "old.pt")
    assert loaded.tokenizer.lexicon == {}
    assert loaded.phone_ids("hello") == loaded.phone_table.encode(G2P()("hello"))


def test_files_without_a_scorer_load_as_cosine_models(tmp_path):
    from pyadml.checksum import seal

    _export(tmp_path, fake_checkpoint(tmp_path / "a.pt", 0, 1, 5))
    blob = torch.load(tmp_path / "final.pt", weights_only=True)
    del blob["scorer"], blob["head_config"], blob["checksum"]
    torch.save(seal(blob), tmp_path / "old.pt")  # as pyadml-kws/2 files were written before
    loaded = load_model(tmp_path / "old.pt")
    assert loaded.scorer == "cosine" and loaded.model.head is None


def test_export_checks_its_inputs(tmp_path):
    a = fake_checkpoint(tmp_path / "a.pt", 0, 1, 5)
    with pytest.raises(ValueError, match="vocab_size"):
        export_model(a, tmp_path / "x.pt", audio_config=AUDIO, text_config={**TEXT, "vocab_size": 5},
                     tokenizer=TOKENIZER, features=FEATURES, meta={})
    with pytest.raises(RuntimeError, match="Missing key"):
        export_model({k: v for k, v in a.items() if not k.startswith("text.")}, tmp_path / "x.pt",
                     audio_config=AUDIO, text_config=TEXT, tokenizer=TOKENIZER,
                     features=FEATURES, meta={})
    with pytest.raises(ValueError, match="mean_norm"):
        export_model(a, tmp_path / "x.pt", audio_config=AUDIO, text_config=TEXT,
                     tokenizer=TOKENIZER, features={"num_mel_bins": 40}, meta={})
    assert not (tmp_path / "x.pt").exists()


def test_load_model_rejects_other_files(tmp_path):
    fake_checkpoint(tmp_path / "ckpt.pt", 0, 1, 1)
    with pytest.raises(ValueError, match="not a pyadml model file"):
        load_model(tmp_path / "ckpt.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="not a pyadml model file"):
        load_model(tmp_path / "junk.pt")
    torch.save({"format": FORMAT, "model": {}}, tmp_path / "partial.pt")
    with pytest.raises(ValueError, match="lacks"):
        load_model(tmp_path / "partial.pt")
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.pt")


def test_export_cli_averages_the_last_epochs_numerically(tmp_path, capsys):
    exp = tmp_path / "exp" / "tiny"
    (exp / "checkpoints").mkdir(parents=True)
    sds = {e: fake_checkpoint(exp / "checkpoints" / f"epoch-{e}.pt", e, e, e) for e in (2, 9, 10)}
    (exp / "config.yaml").write_text(yaml.safe_dump({"model": {"audio": AUDIO, "text": TEXT},
                                                     "average": 2}))
    # Stage 6 copied the lang directory and the fbank options into the experiment.
    assert export_cli.main(["--exp-dir", str(exp)]) == 1
    assert "lang/phones.txt: missing" in capsys.readouterr().err
    TOKENIZER.write_lang_dir(exp / "lang")
    assert export_cli.main(["--exp-dir", str(exp)]) == 1
    assert "fbank.yaml: missing" in capsys.readouterr().err
    (exp / "fbank.yaml").write_text("num_mel_bins: 40\nframe_length: 0.025\nframe_shift: 0.01\n"
                                    "dither: 0.0\nmean_norm: true\n")
    rc = export_cli.main(["--exp-dir", str(exp)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "epoch-9.pt, epoch-10.pt" in out  # 9 and 10, not "10" and "2" as strings sort
    loaded = load_model(exp / "final.pt")
    assert loaded.meta["epochs"] == [9, 10] and loaded.meta["step"] == 100
    assert loaded.features["mean_norm"] is True and loaded.features["num_mel_bins"] == 40
    assert loaded.tokenizer == TOKENIZER
    sd = loaded.model.state_dict()
    for k in sd:
        if not k.endswith("num_batches_tracked"):
            torch.testing.assert_close(sd[k], (sds[9][k] + sds[10][k]) / 2)

    # --avg overrides the config; a larger N than available averages what exists.
    rc = export_cli.main(["--exp-dir", str(exp), "--avg", "5"])
    assert rc == 0 and load_model(exp / "final.pt").meta["epochs"] == [2, 9, 10]
    assert "only 3" in capsys.readouterr().err


def test_exported_model_has_no_pickled_code(tmp_path):
    _export(tmp_path, fake_checkpoint(tmp_path / "a.pt", 0, 1, 5))
    blob = torch.load(tmp_path / "final.pt", weights_only=True)
    assert isinstance(blob["audio_config"]["kernel_sizes"], list)
    assert np.isfinite(sum(float(v.float().sum()) for v in blob["model"].values()))


def test_a_corrupt_or_truncated_model_file_is_an_error_naming_it(tmp_path):
    from pyadml.checksum import CorruptFile

    _export(tmp_path, fake_checkpoint(tmp_path / "a.pt", 0, 1, 5))
    good = (tmp_path / "final.pt").read_bytes()
    blob = torch.load(tmp_path / "final.pt", weights_only=True)
    big = max(blob["model"].values(), key=lambda t: t.numel())
    data = big.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
    at = good.find(data)
    assert at >= 0
    bad = bytearray(good)
    bad[at:at + 4096] = bytes(b ^ 0xFF for b in bad[at:at + 4096])
    (tmp_path / "flipped.pt").write_bytes(bytes(bad))
    torch.load(tmp_path / "flipped.pt", weights_only=True)  # torch itself notices nothing
    with pytest.raises(CorruptFile, match=r"flipped.pt: checksum mismatch"):
        load_model(tmp_path / "flipped.pt")
    (tmp_path / "short.pt").write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match=r"short.pt: not a pyadml model file"):
        load_model(tmp_path / "short.pt")
    del blob["checksum"]
    torch.save(blob, tmp_path / "nosum.pt")
    with pytest.raises(CorruptFile, match="nosum.pt: no checksum"):
        load_model(tmp_path / "nosum.pt")


def test_a_final_pt_that_a_full_disk_cuts_off_names_the_file_and_the_cause(tmp_path, disk_full):
    """Stage 7 on a full disk stopped with a 20-line traceback ending in `RuntimeError: [enforce
    fail at inline_container.cc:672] . unexpected pos 87680 vs 87568`. Now `export_model:
    …/final.pt: cannot write it: no space left on the device of …`, and an earlier final.pt
    is kept as it was."""
    a = fake_checkpoint(tmp_path / "a.pt", 0, 1, 5)
    _export(tmp_path, a)
    before = (tmp_path / "final.pt").read_bytes()
    disk_full(tmp_path, after=4096)
    with pytest.raises(OSError, match=rf"^{tmp_path / 'final.pt'}: cannot write it: no space "
                                      rf"left on the device of {tmp_path} \("):
        _export(tmp_path, a)
    assert (tmp_path / "final.pt").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt", "final.pt"]
