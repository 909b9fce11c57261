# Corpus locations. Leave a path empty to use the embedded corpus that stage 0 synthesises
# under data/local/synth/ in the same layout. See the README ("Using the real corpora").

# Training: a Kaldi data directory (wav.scp, text, utt2spk, optional segments) and a word CTM
# ("utt channel start duration word"), as <dir>/data/ and <dir>/data/words.ctm.
KING_ASR_066=
# Evaluation: the LDC WSJ root that holds wsj0/ (.wv1 SPHERE files, .dot transcripts), with a
# Kaldi data directory and word CTM of the evaluation utterances in <dir>/data/.
WSJ=
# Optional for WSJ: the word CTM of the evaluation utterances when it is not <WSJ>/data/words.ctm
# (LDC's directories are then read directly).
WSJ_CTM=
# Evaluation: the directory with data/libriphrase_diffspk_all_{1,2,3,4}word.csv; the CSVs' wav
# paths are relative to it.
LIBRIPHRASE=
# Augmentation: MUSAN (music/ noise/ speech/) and RIRS_NOISES (simulated_rirs/ ...).
MUSAN=
RIRS_NOISES=
# Measuring only, never trained on: a directory of real keyword recordings (clips.tsv of
# "audio/<file><TAB>keyword" lines + audio/), scored in stage 8 (every clip against every keyword)
# and inserted into continuous speech in stage 9. Empty: ../shared/data/wakeword_dev beside the
# toolkit when it exists, else skipped. A path without clips.tsv stops run.sh before stage 0.
WAKEWORD_DEV=
