"""A length-grouped sampler whose shuffle depends only on (seed, epoch).

HF's LengthGroupedSampler draws from the global RNG when iteration starts, so a run resumed mid-epoch
(whose RNG was restored to the checkpoint's state) would see a different batch order than the
original run. Seeding per epoch makes a resumed run reproduce the uninterrupted one exactly.
"""

from __future__ import annotations

import torch
from transformers.trainer_pt_utils import LengthGroupedSampler


class EpochSeededLengthGroupedSampler(LengthGroupedSampler):
    def __init__(self, batch_size: int, lengths: list[int], seed: int):
        super().__init__(batch_size, lengths=lengths, generator=torch.Generator())
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.generator.manual_seed(self.seed + int(epoch))
