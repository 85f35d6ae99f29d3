"""Batch samplers: PK (P identities x K images) and plain shuffled batches, seeded and distributed.

Both produce the batches of an epoch as a pure function of ``(seed, epoch)``,
so a resumed run sees exactly the batches an uninterrupted one would (the
sampler's whole state is its seed and the epoch). Under several processes
every rank builds the same global list of batches and takes every
``world_size``-th one (``rank``, ``rank + world_size``, ...), truncated so that
all ranks make the same number of steps; each rank's batch has the full size,
so the effective batch is ``world_size`` times larger.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np


class _EpochBatches:
    """Common part: epoch counter, rank slicing, iteration."""

    def __init__(self, seed: int, rank: int, world_size: int) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
        self.seed, self.rank, self.world_size, self.epoch = int(seed), rank, world_size, 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches ``__iter__`` yields."""
        self.epoch = int(epoch)

    def _rng(self, epoch: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, epoch])

    def global_batches(self, epoch: int) -> list[np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def batches(self, epoch: int | None = None) -> list[np.ndarray]:
        """This rank's batches (arrays of dataset indices) of ``epoch`` (default: current)."""
        every = self.global_batches(self.epoch if epoch is None else epoch)
        usable = len(every) - len(every) % self.world_size
        return every[self.rank : usable : self.world_size]

    def __iter__(self) -> Iterator[list[int]]:
        return (b.tolist() for b in self.batches())

    def __len__(self) -> int:
        return len(self.batches())

    def state_dict(self) -> dict[str, int]:
        """Everything needed to reproduce the batches: seed, epoch, rank, world size."""
        state = {"seed": self.seed, "epoch": self.epoch, "rank": self.rank}
        state["world"] = self.world_size
        return {k: int(v) for k, v in state.items()}  # plain ints: loads with weights_only

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Restore seed and epoch (rank and world size stay those of this process)."""
        self.seed, self.epoch = int(state["seed"]), int(state["epoch"])


class PKSampler(_EpochBatches):
    """P identities x K images per batch (Hermans et al. 2017; fast-reid's identity sampler).

    Each epoch every identity's images are shuffled and cut into chunks of K
    (an identity with fewer than K images is filled up by drawing its images
    again; the last incomplete chunk of a larger identity is dropped). Batches
    then take one chunk from each of P distinct identities drawn at random
    among those with chunks left, until fewer than P identities remain.
    """

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray,
        num_identities: int,
        num_instances: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        super().__init__(seed, rank, world_size)
        labels = np.asarray(labels)
        self.p, self.k = int(num_identities), int(num_instances)
        if self.p < 2 or self.k < 1:
            raise ValueError(
                f"PK sampler needs P >= 2 identities and K >= 1 images, got P={self.p}, K={self.k}"
            )
        order = np.argsort(labels, kind="stable")
        ids, starts = np.unique(labels[order], return_index=True)
        self.groups = np.split(order, starts[1:])
        if len(ids) < self.p:
            raise ValueError(
                f"PK sampler: {len(ids)} identities in the data, fewer than P={self.p}; "
                "lower batch_size or raise num_instances"
            )

    def global_batches(self, epoch: int) -> list[np.ndarray]:
        rng = self._rng(epoch)
        chunks: list[list[np.ndarray]] = []
        for group in self.groups:
            idx = group if len(group) >= self.k else rng.choice(group, self.k, replace=True)
            idx = rng.permutation(idx)
            n = len(idx) // self.k
            chunks.append([idx[i * self.k : (i + 1) * self.k] for i in range(n)])
        left = np.array([len(c) for c in chunks])
        batches = []
        while (left > 0).sum() >= self.p:
            avail = np.flatnonzero(left > 0)
            chosen = rng.choice(avail, self.p, replace=False)
            batches.append(np.concatenate([chunks[c][len(chunks[c]) - left[c]] for c in chosen]))
            left[chosen] -= 1
        return batches


class RandomBatchSampler(_EpochBatches):
    """Shuffled batches of ``batch_size`` (paper recipe); the last incomplete one is dropped."""

    def __init__(
        self, n: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1
    ) -> None:
        super().__init__(seed, rank, world_size)
        if n < batch_size:
            raise ValueError(f"{n} training images, fewer than one batch of {batch_size}")
        self.n, self.batch_size = int(n), int(batch_size)

    def global_batches(self, epoch: int) -> list[np.ndarray]:
        perm = self._rng(epoch).permutation(self.n)
        count = self.n // self.batch_size
        return [perm[i * self.batch_size : (i + 1) * self.batch_size] for i in range(count)]
