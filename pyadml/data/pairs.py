"""(audio, keyword) pairs for the detector baselines (PhonMatchNet, CMCD) from a K x M batch.

Each utterance of the batch gives its matched pair (its own transcript), ``mismatches`` pairs
with another keyword of the batch drawn at random, and ``hard_negatives`` pairs with the
batch keywords nearest to its own in phoneme edit distance (kaldialign). A keyword with the
same phone sequence as the spoken one (a homophone) is never drawn as a negative.

Phoneme labels follow PhonMatchNet: position k of the enrolled keyword is 1 when its phoneme
equals the spoken transcript's phoneme at position k (0 past the transcript's end).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import kaldialign
import torch


def phoneme_match_labels(enrolled: Sequence[int], spoken: Sequence[int]) -> list[int]:
    """1 at position k when enrolled[k] == spoken[k], else 0; one label per enrolled phoneme."""
    return [int(k < len(spoken) and p == spoken[k]) for k, p in enumerate(enrolled)]


def edit_distance_matrix(seqs: Sequence[Sequence[int]]) -> list[list[int]]:
    """Symmetric (K, K) phoneme edit distances (insertions, deletions, substitutions)."""
    k = len(seqs)
    out = [[0] * k for _ in range(k)]
    for i in range(k):
        for j in range(i + 1, k):
            d = kaldialign.edit_distance(list(seqs[i]), list(seqs[j]))["total"]
            out[i][j] = out[j][i] = int(d)
    return out


class Pairs(NamedTuple):
    audio: torch.Tensor       # (P,) row of the batch utterance
    text: torch.Tensor        # (P,) index of the keyword text (into the batch's distinct texts)
    label: torch.Tensor       # (P,) float 1 = matched
    phn_label: torch.Tensor   # (P, L_max) float phoneme labels, 0 at padding


def build_pairs(text_of_utt: Sequence[int], text_phones: Sequence[Sequence[int]],
                mismatches: int = 1, hard_negatives: int = 1,
                generator: torch.Generator | None = None) -> Pairs:
    """Pairs of a batch whose utterance i says text ``text_of_utt[i]`` (an index into the K
    distinct ``text_phones``). Matched pairs come first (row i is utterance i), then each
    utterance's random mismatches, then its hard negatives. An utterance with fewer eligible
    negatives than asked (a batch of one keyword) gets as many as there are. Hard negatives are
    the nearest keywords in edit distance (ties broken at random), drawn apart from the random
    mismatches, so the two may coincide."""
    texts = [tuple(int(p) for p in t) for t in text_phones]
    text_of_utt = [int(i) for i in text_of_utt]
    n = len(text_of_utt)
    dist = edit_distance_matrix(texts) if hard_negatives > 0 else None
    audio, text = list(range(n)), list(text_of_utt)
    for kind, count in (("random", mismatches), ("hard", hard_negatives)):
        for i, own in enumerate(text_of_utt):
            eligible = [j for j in range(len(texts)) if texts[j] != texts[own]]
            if not eligible or count <= 0:
                continue
            perm = torch.randperm(len(eligible), generator=generator).tolist()
            shuffled = [eligible[p] for p in perm]
            if kind == "hard":
                shuffled.sort(key=lambda j: dist[own][j])  # stable: random among ties
            for j in shuffled[:count]:
                audio.append(i)
                text.append(j)
    spoken = [texts[t] for t in text_of_utt]
    l_max = max(len(t) for t in texts) if texts else 0
    phn = torch.zeros(len(audio), l_max)
    for row, (i, j) in enumerate(zip(audio, text)):
        lab = phoneme_match_labels(texts[j], spoken[i])
        phn[row, :len(lab)] = torch.tensor(lab, dtype=phn.dtype)
    label = torch.tensor([float(texts[j] == spoken[i]) for i, j in zip(audio, text)])
    return Pairs(torch.tensor(audio, dtype=torch.long), torch.tensor(text, dtype=torch.long),
                 label, phn)
