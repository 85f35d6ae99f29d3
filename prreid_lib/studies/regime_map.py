"""When do the part losses help on SynthVeh? The measured map of start x cue strength x grid.

``benchmarks/bench_science.py`` trains the baseline and the part-regularized model
(``lambda_p`` 0 and 1) for each cell of a grid of settings, two or three training
seeds each, and logs one row per model in ``benchmarks/results/regime_map.csv``
(the batch ``M1``): the start (pretrained on SynthVeh's make-model-colour split, 5
fine-tuning epochs; or random, 10 epochs), SynthVeh's ``cue_strength`` and the
backbone, which sets the feature grid at 64 px (ResNet-18: 4 x 4; ResNet-18 through
``layer3``: 8 x 8). :func:`regime_map` reads the log into one row per setting with the
part losses' difference in CMC@1 and its verdict under the book's one rule
(:func:`prreid_lib.uncertainty.seed_difference`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from prreid_lib.book_timing import REPO_ROOT
from prreid_lib.model import grid_size
from prreid_lib.uncertainty import seed_difference

__all__ = [
    "REGIME_MAP_COLUMNS",
    "REGIME_MAP_CSV",
    "pooled_seed_sd",
    "regime_counts",
    "regime_map",
    "regime_reading",
]

REGIME_MAP_CSV = REPO_ROOT / "benchmarks" / "results" / "regime_map.csv"
"""The measured log the map is read from (one row per trained model)."""
REGIME_MAP_COLUMNS = [
    "start",
    "cue strength",
    "grid",
    "seeds",
    "baseline CMC@1",
    "part-regularized CMC@1",
    "difference",
    "difference / SE",
    "verdict",
]
"""Columns of :func:`regime_map`."""


def _cue(synth: object) -> float:
    for item in str(synth).split():
        key, _, value = item.partition("=")
        if key == "cue_strength":
            return float(value)
    raise ValueError(f"a regime map row without cue_strength in its synth column: {synth!r}")


def regime_map(path: str | Path = REGIME_MAP_CSV, label: str = "M1") -> pd.DataFrame:
    """One row per setting (start, cue strength, grid) of the batch ``label`` in ``path``.

    The baseline and part-regularized CMC@1 are means over the seeds both were
    trained with; ``difference`` is part-regularized minus baseline, ``verdict``
    ``"gain"`` or ``"loss"`` when it exceeds two standard errors of the seed
    spread, else ``"within noise"``. A setting trained with one seed takes the
    spread pooled over the others (:func:`pooled_seed_sd`). A missing log raises
    naming the file and the command that writes it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no regime map log there; run benchmarks/bench_science.py with --label "
            f"{label} --out {path} for each setting (benchmarks/results/quick_science.md lists "
            "the commands)"
        )
    log = pd.read_csv(path)
    log = log[log["label"] == label]
    if log.empty:
        raise ValueError(f"{path}: no rows of batch {label!r}")
    log = log.assign(
        start=["pretrained" if e > 0 else "random" for e in log["pretrain_epochs"]],
        cue=[_cue(s) for s in log["synth"]],
        grid=[f"{grid_size(64, 1, a)} x {grid_size(64, 1, a)}" for a in log["arch"]],
    ).drop_duplicates(["start", "cue", "grid", "lambda_p", "seed"], keep="last")
    cells = {}
    for key, cell in log.groupby(["start", "cue", "grid"], sort=True):
        base = cell[cell["lambda_p"] == 0].set_index("seed")["cmc1"]
        part = cell[cell["lambda_p"] > 0].set_index("seed")["cmc1"]
        seeds = base.index.intersection(part.index)
        if len(seeds):
            cells[key] = (base[seeds], part[seeds])
    spread = pooled_seed_sd(cells.values())
    rows = []
    for (start, cue, grid), (base, part) in cells.items():
        verdict = seed_difference(base, part, reference_sd=spread if len(base) == 1 else None)
        rows.append(
            {
                "start": start,
                "cue strength": cue,
                "grid": grid,
                "seeds": len(base),
                "baseline CMC@1": float(base.mean()),
                "part-regularized CMC@1": float(part.mean()),
                "difference": verdict.difference,
                "difference / SE": verdict.ratio if verdict.known else float("nan"),
                "verdict": verdict.sign if verdict.beyond else "within noise",
            }
        )
    return pd.DataFrame(rows, columns=REGIME_MAP_COLUMNS)


def pooled_seed_sd(cells: Iterable[tuple[pd.Series, pd.Series]]) -> float | None:
    """The seed spread of one training, pooled over every model of the cells trained with
    two or more seeds (the root of the mean sample variance), or ``None`` when none was.
    A setting trained with one seed is read against it."""
    variances = [s.var(ddof=1) for pair in cells for s in pair if len(s) > 1]
    return float(np.sqrt(np.mean(variances))) if variances else None


def regime_counts(table: pd.DataFrame) -> dict[str, int]:
    """How many settings of :func:`regime_map` show a gain, a loss, or neither."""
    counts = table["verdict"].value_counts()
    return {k: int(counts.get(k, 0)) for k in ("gain", "loss", "within noise")}


def regime_reading(table: pd.DataFrame) -> str:
    """One sentence on the map that follows its verdicts (whatever they are)."""
    counts = regime_counts(table)
    n = len(table)
    if counts["gain"] == 0:
        lead = f"In none of the {n} settings do the part losses raise CMC@1 beyond the noise"
    else:
        cells = table[table["verdict"] == "gain"]
        where = "; ".join(
            f"{r['start']} start, cue {r['cue strength']:g}, grid {r['grid']}"
            for r in cells.to_dict("records")
        )
        lead = (
            f"The part losses raise CMC@1 beyond the noise in {counts['gain']} of {n} "
            f"settings ({where})"
        )
    best = table.loc[table["difference"].idxmax()]
    return (
        f"{lead}; they lower it in {counts['loss']} and leave it within the noise in "
        f"{counts['within noise']}. The largest difference, {best['difference']:+.3f}, is at "
        f"the {best['start']} start, cue strength {best['cue strength']:g}, grid {best['grid']}."
    )
