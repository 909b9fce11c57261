#!/usr/bin/env python
"""Fail when a test set shares a speaker with the training set, naming the speakers.

    python local/check_disjoint_speakers.py <manifest-dir> <train-set> <test-set> ...

Speakers are read from each set's supervisions and, for a LibriPhrase-style set, from the
anchor_spk/comparison_spk columns of its pair rows; LibriPhrase numbers speakers as
LibriSpeech does, so an overlap means the model trained on a test speaker's voice
(pyadml.data.prepare.librispeech.check_disjoint_speakers).
"""
import sys

from pyadml.data.prepare.librispeech import main

if __name__ == "__main__":
    sys.exit(main(["check-disjoint", *sys.argv[1:]]))
