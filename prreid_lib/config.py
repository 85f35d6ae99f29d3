"""Profiles: one place for data sizes, epochs, resolution and lambda_p.

A profile bundles the settings of every stage of the pipeline (SynthVeh
generation, part detection, re-id training, evaluation). Notebooks take a
profile *name* as a papermill parameter and call :func:`get_profile`.

- ``smoke``: tests and CI; every notebook runs in seconds.
- ``quick``: default of ``make book`` on 2 CPU cores; trends visible.
- ``paper``: a GPU; ResNet-50 at 256 px as in the paper.
- ``veri776``, ``vehicleid``: like ``paper`` but on the real data sets,
  found under a ``data_root`` given by the user.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

PART_NAMES: tuple[str, ...] = ("window", "light", "brand")
"""The paper's three parts (Sec. 3.2), in the order of the part branches."""


@dataclass(frozen=True)
class SynthConfig:
    """Size and difficulty of the procedural SynthVeh data set."""

    n_makes: int = 4
    models_per_make: int = 3
    n_colours: int = 4
    veri_train_ids: int = 200
    veri_test_ids: int = 100
    veri_cameras: int = 8
    veri_images_per_id: int = 10
    vehicleid_train_ids: int = 200
    vehicleid_test_sizes: tuple[int, int, int] = (100, 200, 300)
    vehicleid_images_per_id: int = 8
    n_annotated: int = 500
    n_part_val: int = 100
    image_size: int = 128
    cue_strength: float = 1.6
    outside_cue_share: float = 0.0
    near_duplicate_share: float = 0.8
    vehicleid_train_sites_per_id: int = 0
    pretrain_ids: int = 0
    pretrain_images_per_id: int = 8


@dataclass(frozen=True)
class DetectorConfig:
    """Ultralytics YOLO part detector (built from a yaml, never downloaded)."""

    model_yaml: str = "yolo11n.yaml"
    imgsz: int = 128
    epochs: int = 30
    batch: int = 32
    conf: float = 0.25


@dataclass(frozen=True)
class TrainConfig:
    """Re-id training: backbone, input size, schedule and loss weights."""

    arch: str = "resnet18"
    last_stride: int = 1
    input_size: int = 64
    feat_dim: int = 256
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.01
    lr_gamma: float = 0.9
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lambda_p: dict[str, float] = field(
        default_factory=lambda: {"window": 1.0, "light": 1.0, "brand": 1.0}
    )
    use_global: bool = True
    recipe: str = "paper"
    num_instances: int = 4
    pretrained: str | None = None


@dataclass(frozen=True)
class PretrainConfig:
    """The stand-in for ImageNet pretraining (:mod:`prreid_lib.pretrain`): a make-model-colour
    classifier on SynthVeh's pretraining split, trained with this schedule."""

    epochs: int = 12
    lr: float = 0.01
    lr_gamma: float = 0.9
    batch_size: int = 32


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation protocol settings."""

    n_trials: int = 10


@dataclass(frozen=True)
class StudySizes:
    """How large the studies of chapters 5, 7 and 8 are (what each profile's time allows)."""

    veri_train: str = "veri776"
    """Chapter 5: the training set of its VeRi-776 models: ``"veri776"`` trains the pair
    again, ``"vehicleid"`` reuses chapter 4's (a cross-set test, no training)."""
    input_sizes: tuple[int, ...] = (128, 256, 512)
    """Chapter 7: input sizes (px) the part-regularized model is trained at."""
    outside_cue_shares: tuple[float, ...] = (0.0, 0.5, 1.0)
    """Chapter 7: levels of SynthVeh's ``outside_cue_share``, one data set each."""
    random_start: bool = True
    """Chapter 7: also train the headline pair from a random start."""
    cam_pairs: int = 4
    """Chapter 8: near-duplicate pairs whose class activation maps are drawn."""
    cam_images: int = 300
    """Chapter 8: at most this many training images in the share-in-parts measure."""


@dataclass(frozen=True)
class Profile:
    """All settings of one profile; ``real_data`` names a real data set or ``None``."""

    name: str
    synth: SynthConfig
    detector: DetectorConfig
    train: TrainConfig
    eval: EvalConfig = EvalConfig()
    real_data: str | None = None
    pretrain: PretrainConfig | None = None
    n_seeds: int = 1
    """Training seeds of the headline comparison (chapter 4): ``seed``, ``seed + 1``, ..."""
    study: StudySizes = StudySizes()
    """Sizes of the chapters' studies (:class:`StudySizes`)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (for hashing runs and printing)."""
        return asdict(self)


_SMOKE = Profile(
    name="smoke",
    synth=SynthConfig(
        n_makes=2,
        models_per_make=2,
        n_colours=2,
        pretrain_ids=12,
        pretrain_images_per_id=4,
        veri_train_ids=16,
        veri_test_ids=8,
        veri_cameras=4,
        veri_images_per_id=6,
        vehicleid_train_ids=16,
        vehicleid_test_sizes=(6, 8, 10),
        vehicleid_images_per_id=4,
        n_annotated=40,
        n_part_val=16,
        image_size=96,
    ),
    detector=DetectorConfig(imgsz=64, epochs=1, batch=16),
    train=TrainConfig(arch="resnet18", input_size=64, epochs=1, batch_size=32),
    eval=EvalConfig(n_trials=2),
    pretrain=PretrainConfig(epochs=1),
    n_seeds=2,
    study=StudySizes(veri_train="vehicleid", input_sizes=(48, 64), outside_cue_shares=(0.0, 1.0)),
)

_QUICK = Profile(
    name="quick",
    # Cues twice as large as the default (cue_strength 3.2, not 1.6): the models see 64 px,
    # a quarter of the paper's 256, where the default's stickers and light patterns shrink
    # to a pixel or two. Measured in benchmarks/results/quick_science.csv (rows R3, U1, U2):
    # baseline CMC@1 .146 at 1.6, .208 at 2.4, .239 and .275 (two seeds) at 3.2, above the
    # .160 of a feature that knows make, model and colour only; the part-regularized model
    # stays below the baseline at every strength (-.031, -.058, -.044, -.036).
    synth=SynthConfig(
        veri_train_ids=120, vehicleid_train_ids=120, pretrain_ids=300, cue_strength=3.2
    ),
    detector=DetectorConfig(epochs=20),
    # Every model starts from the SynthVeh make-model-colour backbone (pretrain, 12 epochs on
    # 2,400 images, once per book). Fine-tuning: 5 epochs, lr .03 decayed by .85 per epoch,
    # batch 32. Measured in benchmarks/results/quick_science.csv: of the 7-8 epoch schedules
    # (rows Q1, Q2, P8) lr .03 gave the best baseline; at equal book time, 12 pretraining
    # epochs and 5 fine-tuning epochs (row R3, baseline CMC@1 .146) beat 5 and 6 (the book
    # build fb3, .117), 16 pretraining epochs add nothing (R4, .146) and batch 16 learns less
    # (R2). 6 fine-tuning epochs (R1, .180) cost the book's 16 fine-tunings ~100 s more than
    # its 20-minute ceiling allows (chapter 7 skips its random-start pair in quick for the
    # same reason).
    # Detector: 20 epochs, ~150-190 s on 2 cores, mAP50 ~0.97 (15 epochs: .80, brand .55).
    train=TrainConfig(epochs=5, batch_size=32, lr=0.03, lr_gamma=0.85),
    pretrain=PretrainConfig(epochs=12, lr=0.03, lr_gamma=0.85),
    n_seeds=3,
    # Chapter 5 reuses chapter 4's models for VeRi-776; chapter 7 at 48 and 64 px, cues
    # inside or outside, without its random-start pair: the 20-minute budget has no room.
    study=StudySizes(
        veri_train="vehicleid",
        input_sizes=(48, 64),
        outside_cue_shares=(0.0, 1.0),
        random_start=False,
    ),
)

_PAPER = Profile(
    name="paper",
    synth=SynthConfig(
        n_makes=10,
        models_per_make=5,
        n_colours=8,
        veri_train_ids=576,
        veri_test_ids=200,
        veri_cameras=20,
        veri_images_per_id=40,
        vehicleid_train_ids=5000,
        vehicleid_test_sizes=(800, 1600, 2400),
        vehicleid_images_per_id=8,
        n_annotated=500,
        n_part_val=200,
        image_size=256,
        pretrain_ids=1000,
    ),
    detector=DetectorConfig(model_yaml="yolo11s.yaml", imgsz=320, epochs=100, batch=64),
    train=TrainConfig(arch="resnet50", input_size=256, epochs=40, batch_size=64),
    pretrain=PretrainConfig(epochs=12, batch_size=64),
    n_seeds=3,
)

_PAPER_CHECK = Profile(
    name="paper-check",
    # The paper profile's model, input and batch composition (ResNet-50 at 256 px, last
    # stride 1: a 16 x 16 grid; batches of 16 identities x 4 images; YOLO11s at 320 px,
    # batch 64) on a few hundred images with one or two iterations per training: proof that
    # every chapter runs at the paper's sizes, on 2 CPU cores (`make book PROFILE=paper-check`,
    # times and peak memory in benchmarks/results/paper_check.md). Its numbers mean nothing.
    # Each training is one iteration (64 images, one epoch). The resolution study stops at
    # 256 px: one ResNet-50 step at 512 px took 8.8 GiB at batch 16 in float32 (measured),
    # so the paper's batch of 64 needs about 32 GiB, beyond a 24 GiB machine; `paper` on a
    # GPU trains it.
    synth=replace(
        _PAPER.synth,
        n_makes=4,
        models_per_make=2,
        n_colours=2,
        veri_train_ids=16,
        veri_test_ids=8,
        veri_cameras=4,
        veri_images_per_id=4,
        vehicleid_train_ids=16,
        vehicleid_test_sizes=(6, 8, 10),
        vehicleid_images_per_id=4,
        n_annotated=64,
        n_part_val=16,
        pretrain_ids=16,
        pretrain_images_per_id=4,
    ),
    detector=replace(_PAPER.detector, epochs=1),
    train=replace(_PAPER.train, epochs=1),
    eval=EvalConfig(n_trials=2),
    pretrain=PretrainConfig(epochs=1, batch_size=64),
    n_seeds=2,
    study=StudySizes(input_sizes=(128, 256), outside_cue_shares=(0.0, 1.0), cam_images=32),
)

PROFILES: dict[str, Profile] = {
    "smoke": _SMOKE,
    "quick": _QUICK,
    "paper": _PAPER,
    "paper-check": _PAPER_CHECK,
    "veri776": replace(_PAPER, name="veri776", real_data="veri776"),
    "vehicleid": replace(_PAPER, name="vehicleid", real_data="vehicleid"),
}


def get_profile(name: str) -> Profile:
    """Return the profile called ``name``; a clear ``ValueError`` lists the valid names."""
    try:
        return PROFILES[name]
    except KeyError:
        valid = ", ".join(sorted(PROFILES))
        raise ValueError(f"unknown profile {name!r}; choose one of: {valid}") from None
