"""Data pipeline of the recipe (stages 1-5): corpus preparation into lhotse manifests, word
cuts, augmentation, fbank, trial lists, and the K x M batches of training.

Conventions shared by every module here:
- Manifests: ``<corpus>_{recordings,supervisions}_<part>.jsonl.gz`` (lhotse's naming), written
  by the corpus preparers (``pyadml.data.prepare``); a recipe names the set ``<corpus>_<part>``
  (``pyadml.data.manifests``) and every later file after the set.
- Word alignments from a CTM live in each utterance supervision's
  ``alignment["word"]`` (lhotse AlignmentItem: symbol, start, duration; start relative to the
  recording).
- A word cut has id ``<utt-id>_<k>`` (k = the word's index in the utterance, 3 digits) and one
  supervision whose ``text`` is the keyword (the normalised word); cuts of a ``pairs`` test
  set are whole recordings whose supervision text is the phrase. The keyword of any cut is
  ``cut.supervisions[0].text``.
"""
