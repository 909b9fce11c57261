"""pyadml.train.progress: the lines a pipe gets (rate limit, fields, ETA), the live bar, the
channel that run_stage sets up, and stage 6's TrainProgress."""

import io
import re

from pyadml.train.progress import Progress, TrainProgress, channel, format_seconds, note


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_pipe_lines_are_rate_limited_and_carry_count_fields_and_eta():
    clock, out = Clock(), io.StringIO()
    p = Progress("synth 1/5 king_asr_066", 400, "words", stream=out, live=False, interval=10,
                 clock=clock)
    for _ in range(35):  # one update a second, 10 words each
        clock.t += 1
        p.update(10, voice="rms")
    p.note("an event line shows at once")
    clock.t += 3
    p.update(50)  # 8 s after the last line: none
    p.close()
    lines = out.getvalue().splitlines()
    # at most one periodic line per 10 s (after 10, 20 and 30 s), the event, the final line
    assert lines[:3] == [
        "   synth 1/5 king_asr_066: 100/400 words (25%) | 10 words/s | voice rms | elapsed 10s | ETA 30s",
        "   synth 1/5 king_asr_066: 200/400 words (50%) | 10 words/s | voice rms | elapsed 20s | ETA 20s",
        "   synth 1/5 king_asr_066: 300/400 words (75%) | 10 words/s | voice rms | elapsed 30s | ETA 10s",
    ]
    assert lines[3] == "   an event line shows at once"
    assert lines[4] == "   synth 1/5 king_asr_066: 400/400 words (100%) | 10.5 words/s | voice rms | elapsed 38s"
    assert len(lines) == 5
    p.update(1)  # after close: nothing more
    assert len(out.getvalue().splitlines()) == 5


def test_no_line_before_the_first_interval_and_rates_read_as_units():
    clock, out = Clock(), io.StringIO()
    p = Progress("x", 10, "steps", stream=out, live=False, interval=15, clock=clock, show_rate=False)
    clock.t += 14
    p.update(3, **{"utt/s": "45.2", "loss": 1.23456789})
    assert out.getvalue() == ""
    clock.t += 1
    p.update(1)
    assert out.getvalue() == "   x: 4/10 steps (40%) | 45.2 utt/s | loss 1.235 | elapsed 15s | ETA 22s\n"


def test_live_bar_redraws_in_place_and_ends_its_line():
    out = io.StringIO()
    p = Progress("train", 20, "steps", stream=out, live=True, show_rate=False)
    for _ in range(20):
        p.update(1, loss=0.5)
    p.note("epoch 1/1 done")
    p.close()
    text = out.getvalue()
    assert "\r" in text and text.endswith("\n")
    assert "   epoch 1/1 done\n" in text
    last = text.rstrip("\n").split("\r")[-1]
    assert re.search(r"train: 100%.*20/20 steps \| loss 0.5 \| elapsed \S+ \| ETA 0s", last), last


def test_the_channel_is_the_file_run_stage_names(tmp_path, monkeypatch):
    path = tmp_path / "stage.log.progress"
    monkeypatch.setenv("PYADML_PROGRESS", str(path))
    monkeypatch.setenv("PYADML_PROGRESS_TTY", "0")
    monkeypatch.setenv("PYADML_PROGRESS_INTERVAL", "0")
    stream, live, owned = channel()
    assert owned and not live
    stream.close()
    with Progress("wsj", 2, "words") as p:
        p.update(1)
        p.update(1)
    note("rirs_noises: done")
    lines = path.read_text().splitlines()
    assert lines[0].startswith("   wsj: 1/2 words (50%)") and lines[1].startswith("   wsj: 2/2 words")
    assert lines[-1] == "   rirs_noises: done"
    monkeypatch.setenv("PYADML_PROGRESS_TTY", "1")
    assert channel()[1] is True


def test_format_seconds():
    assert [format_seconds(s) for s in (None, 4.4, 59.6, 61, 3599, 3723)] == \
        ["?", "4s", "1:00", "1:01", "59:59", "1:02:03"]


def test_train_progress_shows_epoch_steps_loss_rate_eta_and_dev_ap():
    clock, out = Clock(), io.StringIO()
    tp = TrainProgress(epochs=2, step=0, stream=out, live=False, interval=10, clock=clock)
    tp.start_epoch(0, step=0, batches_done=0, batches=10)
    for k in range(10):
        clock.t += 2  # 2 s a step, 16 utterances a step
        tp.step(16, loss=1.5 if k % 2 else None)
    # dev AP after the epoch; its 6 s count in the ETA of the epochs still to come
    clock.t += 6
    tp.epoch_done(1, 26.0, 0.4321, dev_seconds=6.0)
    tp.start_epoch(1, step=10, batches_done=0, batches=10)
    for _ in range(5):
        clock.t += 2
        tp.step(16, loss=1.25)
    tp.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == ("   train, epoch 1/2: 5/20 steps (25%) | loss 1.5000 | 8 utt/s | elapsed 10s | "
                        "ETA 30s")  # 15 steps x 2 s + 2 dev evaluations x 0 s (none timed yet)
    assert "   epoch 1/2 done in 26s; dev AP 0.4321" in lines
    second = [l for l in lines if l.startswith("   train, epoch 2/2")]
    # 8 steps left x 2 s + 1 dev evaluation x 6 s
    assert second[0] == ("   train, epoch 2/2: 12/20 steps (60%) | loss 1.2500 | 8 utt/s | elapsed 30s | "
                         "ETA 22s"), second
    assert lines[-1] == "   train, epoch 2/2: 15/20 steps (75%) | loss 1.2500 | 8 utt/s | elapsed 36s"
