"""A stand-in for ImageNet: a backbone pretrained on SynthVeh's make, model and colour.

The paper fine-tunes a ResNet-50 pretrained on ImageNet; an offline machine
cannot download those weights. What such a start knows, and identity does
not, is what things look like in general: shapes, colours, textures, which on
SynthVeh means make, model and colour. So the stand-in learns exactly that:
a classifier of the make-model-colour *group* trained on SynthVeh's
``pretrain/`` split, whose identities are disjoint from every re-id training
and test identity (so no identity cue can leak into the start).

The pretraining is a run like any other (:func:`prreid_lib.train.run_or_load`):
trained once per profile, data and seed, reused by every variant and chapter.
Its backbone is saved beside it as ``backbone.pt``, the file that
``TrainConfig.pretrained`` takes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from prreid_lib import runs
from prreid_lib.config import Profile, TrainConfig
from prreid_lib.recipes import RecipeOptions
from prreid_lib.synthveh_files import IDENTITIES_FILE

BACKBONE_FILE = "backbone.pt"
RUN_NAME = "synthveh-groups"


@dataclass
class PretrainedBackbone:
    """The pretraining run and the backbone file it left (``TrainConfig.pretrained``)."""

    path: Path
    result: runs.TrainResult


def pretrain_frame(root: str | Path) -> pd.DataFrame:
    """The pretraining images of a SynthVeh root: ``path`` and ``pid`` = group label.

    ``root`` is the SynthVeh root (holding ``pretrain/``) or ``pretrain/`` itself.
    The label is the make-model-colour group, so identities of one group share it.
    """
    base = Path(root).absolute()
    base = base / "pretrain" if (base / "pretrain").is_dir() else base
    table = base / IDENTITIES_FILE
    images = base / "image_list.txt"
    if not table.is_file() or not images.is_file():
        raise FileNotFoundError(
            f"{base}: no SynthVeh pretraining split (image_list.txt, {IDENTITIES_FILE}); "
            "generate SynthVeh with SynthConfig.pretrain_ids > 0 (the quick and paper profiles do)"
        )
    groups = pd.read_csv(table).set_index("pid")["group"]
    lines = pd.read_csv(images, sep=" ", header=None, names=["image", "vehicle"])
    return pd.DataFrame(
        {
            "path": [str(base / p) for p in lines["image"]],
            "pid": lines["vehicle"].map(groups).astype("int64").to_numpy(),
            "vehicle": lines["vehicle"].to_numpy(),
        }
    )


def pretrain_config(profile: Profile) -> TrainConfig:
    """The profile's model with the pretraining schedule: global loss only, no parts."""
    p = profile.pretrain
    if p is None:
        raise ValueError(f"profile {profile.name!r} has no pretraining schedule (pretrain)")
    return replace(
        profile.train,
        epochs=p.epochs,
        lr=p.lr,
        lr_gamma=p.lr_gamma,
        batch_size=p.batch_size,
        lambda_p=dict.fromkeys(profile.train.lambda_p, 0.0),
        use_global=True,
        recipe="paper",
        pretrained=None,
    )


def pretrained_backbone(
    profile: Profile,
    root: str | Path,
    output_dir: str | Path = "runs",
    seed: int = 0,
    device: str = "auto",
    progress: bool = False,
    options: RecipeOptions | None = None,
) -> PretrainedBackbone:
    """Train (or reuse) the group classifier of ``profile`` on ``root``'s pretraining split.

    The run lives under ``output_dir/pretrain/``; its backbone weights are
    written once, atomically, to ``backbone.pt`` in the run folder. ``options``
    (default: the paper recipe's) set e.g. the precision.
    """
    from prreid_lib.train import run_or_load

    result = run_or_load(
        pretrain_config(profile),
        pretrain_frame(root),
        None,
        Path(output_dir) / "pretrain",
        seed=seed,
        device=device,
        progress=progress,
        name=RUN_NAME,
        options=options,
    )
    path = Path(result.run_dir) / BACKBONE_FILE
    if not path.is_file():
        state = {k: v.detach().cpu() for k, v in result.model.backbone.state_dict().items()}
        runs.atomic_torch_save(state, path)
    return PretrainedBackbone(path, result)
