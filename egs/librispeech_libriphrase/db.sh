# Corpus locations. Leave a path empty to use the embedded corpus that stage 0 synthesises
# under data/local/synth/ in the same layout. See README.md here.

# Training: the LibriSpeech directory (openslr.org/12) that holds SPEAKERS.TXT and the
# subsets train-clean-100/ train-clean-360/ [train-other-500/], each
# <spk>/<chapter>/<spk>-<chapter>-<utt>.flac with <spk>-<chapter>.trans.txt.
LIBRISPEECH=
# Its word alignments: a directory with librispeech-alignments' <subset>/<spk>/<chapter>/
# <spk>-<chapter>.alignment.txt files (the format lhotse's LibriSpeech reader parses), or with
# Montreal Forced Aligner TextGrids <utt>.TextGrid (any layout). Empty: look in $LIBRISPEECH
# itself, where librispeech-alignments unpacks.
LIBRISPEECH_ALIGNMENTS=
# Evaluation: LibriPhrase, the directory with data/libriphrase_diffspk_all_{1,2,3,4}word.csv;
# the CSVs' wav paths are relative to it. Its pairs are cut from LibriSpeech train-other-500.
LIBRIPHRASE=
# Optional evaluation on WSJ (the paper's words protocol): uncomment to test on it too (the
# LDC WSJ root with wsj0/ and a Kaldi data directory + word CTM of the test utterances in
# <dir>/data/; empty: the embedded WSJ-like set, which adds about 1.5 minutes to stage 0).
#WSJ=
#WSJ_CTM=
# Augmentation: MUSAN (music/ noise/ speech/) and RIRS_NOISES (simulated_rirs/ ...).
MUSAN=
RIRS_NOISES=
# Measuring only, never trained on: a directory of real keyword recordings (clips.tsv of
# "audio/<file><TAB>keyword" lines + audio/), scored in stage 8 (every clip against every
# keyword). Empty: ../shared/data/wakeword_dev beside the toolkit when it exists, else skipped.
# A path without clips.tsv stops run.sh before stage 0.
WAKEWORD_DEV=
