"""python -m pyadml.bin.textgrid_to_ctm: MFA TextGrids as the CTM of a Kaldi data directory,
read back by stage 1 (prepare_kaldi_dir)."""

import numpy as np
import pytest
import soundfile as sf
from test_prepare_librispeech import TG_LONG, TG_SHORT

from pyadml.bin import textgrid_to_ctm
from pyadml.data.prepare import prepare_kaldi_dir


def corpus(tmp_path, utts=("103-1240-0000", "103-1240-0001", "103-1240-0002")):
    """A Kaldi dir whose first two utterances MFA aligned (short and long format TextGrids,
    speaker sub-directories as MFA writes them); the third it could not."""
    d = tmp_path / "data"
    d.mkdir()
    for u in utts:
        sf.write(tmp_path / f"{u}.wav", np.zeros(16000 * 2, np.float32), 16000)
    (d / "wav.scp").write_text("".join(f"{u} {tmp_path / u}.wav\n" for u in utts))
    (d / "utt2spk").write_text("".join(f"{u} 103\n" for u in utts))
    (d / "text").write_text(f"{utts[0]} CHAPTER ONE\n{utts[1]} ANNE IS SURPRISED\n"
                            f"{utts[2]} GREEN GABLES\n")
    ali = tmp_path / "aligned" / "103"
    ali.mkdir(parents=True)
    (ali / f"{utts[0]}.TextGrid").write_text(TG_SHORT)
    (ali / f"{utts[1]}.TextGrid").write_text(TG_LONG)
    return d, tmp_path / "aligned"


def test_textgrids_become_the_ctm_stage_1_reads(tmp_path, capsys):
    d, ali = corpus(tmp_path)
    ctm = d / "words.ctm"
    assert textgrid_to_ctm.main([str(ali), str(ctm), "--text", str(d / "text")]) == 0
    # The words of the two fixtures by hand: silence ("", sil, sp) left out, spn kept.
    assert ctm.read_text().splitlines() == [
        "103-1240-0000 1 0.300 0.400 chapter", "103-1240-0000 1 0.700 0.400 one",
        "103-1240-0001 1 0.200 0.400 spn", "103-1240-0001 1 0.800 0.200 is",
        "103-1240-0001 1 1.000 0.600 surprised"]
    assert "2 TextGrids, 5 words" in capsys.readouterr().out
    sups = prepare_kaldi_dir(d, ctm=ctm)["supervisions"]
    assert [w.symbol for w in sups["103-1240-0001"].alignment["word"]] == [
        "<unk>", "is", "surprised"]
    assert sups["103-1240-0002"].alignment == {"word": []}  # MFA could not align it


def test_textgrid_errors(tmp_path, capsys):
    d, ali = corpus(tmp_path)
    ctm = d / "words.ctm"
    ctm.write_text("old\n")
    (ali / "stray.TextGrid").write_text(TG_SHORT)
    assert textgrid_to_ctm.main([str(ali), str(ctm), "--text", str(d / "text")]) == 1
    assert "stray.TextGrid: utterance stray is not in the text file" in capsys.readouterr().err
    (ali / "stray.TextGrid").unlink()
    (ali / "other").mkdir()
    (ali / "other" / "103-1240-0000.TextGrid").write_text(TG_SHORT)
    assert textgrid_to_ctm.main([str(ali), str(ctm)]) == 1
    assert "a second TextGrid of utterance 103-1240-0000" in capsys.readouterr().err
    assert textgrid_to_ctm.main([str(tmp_path / "data"), str(ctm)]) == 1
    assert "no .TextGrid files" in capsys.readouterr().err
    assert ctm.read_text() == "old\n"  # nothing written on an error
    with pytest.raises(SystemExit):
        textgrid_to_ctm.main([str(tmp_path / "absent"), str(ctm)])
