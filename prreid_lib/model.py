"""The part-regularized re-id network (paper Sec. 3.2, Fig. 2 and Sec. 4.2).

A torchvision ResNet backbone (18/34/50; the paper uses ResNet-50) gives an
S x S feature map. The *global branch* average-pools it, a 1x1 convolution
maps it to a 256-d feature and an identity classifier follows. Each *part
branch* (window, light, brand) projects its part box onto the S x S grid
(every cell the box overlaps, :func:`prreid_lib.parts.boxes_to_grid_mask`),
average-pools the feature map over those cells only ("local average
pooling"), then a 1x1 convolution to 256-d and a classifier of its own.

At test time the paper uses the global feature only, compared with the L2
distance (Sec. 4.2). A model trained without the global loss ("parts only",
Table 4, row Window+Light+Brand) uses the concatenated part features instead,
which needs part boxes for the test images.

A 1x1 convolution applied to a pooled 1 x 1 map is a linear layer; we write
it as :class:`torch.nn.Linear`. ImageNet weights are read only from a local
file (``pretrained=PATH``); without one the backbone is randomly initialised.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from numbers import Integral
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from prreid_lib.config import PART_NAMES
from prreid_lib.imagenet import normalize_images

ARCHS: dict[str, int] = {
    "resnet18": 512,
    "resnet34": 512,
    "resnet50": 2048,
    "resnet18_l3": 256,
}
"""Supported backbones and the channel count of their last feature map. ``resnet18_l3`` is
ResNet-18 through ``layer3`` (``layer4`` dropped): a quarter of its parameters and, with the
last stage at stride 1, an 8 x 8 grid at 64 px where ResNet-18 gives 4 x 4."""
TRUNCATED = {"resnet18_l3": ("resnet18", "layer3")}
"""Backbones cut after a stage: name -> (torchvision ResNet, last stage kept)."""
MAX_INPUT_SIZE = 1024
"""Largest input side in pixels: twice the paper's largest (512, the resolution study); a
decoded image then takes 3 MiB, a 100,000-image training set 300 GiB of image cache."""
MAX_FEAT_DIM = 8192
"""Largest feature size (the paper's is 256; ResNet-50's last map has 2048 channels)."""
MAX_CLASSES = 1_000_000
"""Most identity classes a model may have (VehicleID trains on 13,164)."""


def check_model_record(record: Mapping, source: str | Path, fix: str) -> None:
    """Refuse a stored model (``kwargs`` and ``input_size`` of a ``model.pt``) with bad sizes.

    Checked before the model is built or an image decoded, so a file that
    claims, say, ``input_size`` 100000 raises ``ValueError`` naming ``source``
    and ``fix`` instead of allocating terabytes.
    """
    kwargs = record.get("kwargs")
    if not isinstance(kwargs, Mapping):
        raise ValueError(f"{source} has no model arguments (kwargs); {fix}")
    sizes = {
        "input_size": (record.get("input_size"), 1, MAX_INPUT_SIZE),
        "feat_dim": (kwargs.get("feat_dim", 256), 1, MAX_FEAT_DIM),
        "num_classes": (kwargs.get("num_classes"), 1, MAX_CLASSES),
    }
    for name, (value, low, high) in sizes.items():
        integer = isinstance(value, Integral) and not isinstance(value, bool)
        if not integer or not low <= int(value) <= high:
            raise ValueError(
                f"{source} stores {name} {value!r}, expected an integer from {low} to {high}: "
                f"the file is damaged or was not written by prreid; {fix}"
            )
    if kwargs.get("arch", "resnet18") not in ARCHS:
        raise ValueError(
            f"{source} stores arch {kwargs.get('arch')!r}, expected one of {', '.join(ARCHS)}; "
            f"{fix}"
        )


def grid_size(input_size: int, last_stride: int = 1, arch: str = "resnet18") -> int:
    """Side S of the backbone's feature map for an ``input_size`` x ``input_size`` image.

    A ResNet halves the resolution five times (stride 32), four times when the
    last stage has stride 1 (stride 16); each halving rounds up. 64 px with
    last stride 1 gives S = 4, 256 px gives S = 16. A backbone cut after
    ``layer3`` (``resnet18_l3``) halves once less: 8 x 8 at 64 px.
    """
    if last_stride not in (1, 2):
        raise ValueError(f"last_stride must be 1 or 2, got {last_stride}")
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {', '.join(ARCHS)}, got {arch!r}")
    halvings = (5 if last_stride == 2 else 4) - (1 if arch in TRUNCATED else 0)
    side = int(input_size)
    for _ in range(halvings):
        side = math.ceil(side / 2)
    return side


def load_backbone_weights(
    net: nn.Module, path: str | Path, arch: str, skip: tuple[str, ...] = ("fc.",)
) -> None:
    """Load a local torchvision ResNet state dict from ``path`` into ``net``.

    The file must be a torchvision ``state_dict`` of the same ``arch`` (keys
    starting with a prefix in ``skip``, the classifier ``fc.*`` by default, are
    ignored). A missing file raises ``FileNotFoundError``; a file that is not a
    state dict, or whose tensors do not match the architecture, raises
    ``ValueError`` naming the file, what was expected and the first mismatching keys.
    """
    path = Path(path)
    hint = (
        f"pass the path of a torchvision {arch} ImageNet state dict "
        f"(torchvision.models.{arch}(weights=...).state_dict() saved with torch.save), "
        "or pretrained=None for random initialisation"
    )
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights file {path} does not exist; {hint}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise ValueError(
            f"pretrained weights file {path} could not be read ({err}); {hint}"
        ) from None
    if (
        isinstance(state, Mapping)
        and "state_dict" in state
        and isinstance(state["state_dict"], Mapping)
    ):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise ValueError(f"pretrained weights file {path} is not a state dict of tensors; {hint}")
    expected = {k: v for k, v in net.state_dict().items() if not k.startswith(skip)}
    missing = [k for k in expected if k not in state]
    wrong = [
        f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or wrong:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing keys, e.g. {', '.join(missing[:3])}")
        if wrong:
            problems.append(f"{len(wrong)} shape mismatches, e.g. {'; '.join(wrong[:3])}")
        raise ValueError(
            f"pretrained weights file {path} does not match {arch}: {'; '.join(problems)}; {hint}"
        )
    net.load_state_dict({k: state[k] for k in expected}, strict=False)


def build_backbone(
    arch: str, last_stride: int = 1, pretrained: str | Path | None = None
) -> nn.Module:
    """A torchvision ResNet without its pooling and classifier, last stage stride configurable.

    ``last_stride=1`` (re-id convention) doubles the feature map side (S = H/16
    instead of H/32). ``pretrained`` is a local state-dict file or ``None``.
    """
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {', '.join(ARCHS)}, got {arch!r}")
    if last_stride not in (1, 2):
        raise ValueError(f"last_stride must be 1 or 2, got {last_stride}")
    torch_arch, last = TRUNCATED.get(arch, (arch, "layer4"))
    stages = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
    names: tuple[str, ...] = stages[: stages.index(last) + 1]
    net = getattr(torchvision.models, torch_arch)(weights=None)
    if pretrained is not None:
        dropped = ("fc.", "layer4.") if last == "layer3" else ("fc.",)
        load_backbone_weights(net, pretrained, torch_arch, skip=dropped)
    if last_stride == 1:
        block = getattr(net, last)[0]
        strided = block.conv2 if hasattr(block, "conv3") else block.conv1  # Bottleneck vs Basic
        strided.stride = (1, 1)
        block.downsample[0].stride = (1, 1)
    return nn.Sequential(OrderedDict((n, getattr(net, n)) for n in names))


def local_average_pool(
    fmap: torch.Tensor, masks: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Average ``fmap`` (B, C, S, S) over the cells of each part mask (B, P, S, S).

    Returns the pooled features (B, P, C) and a validity flag (B, P): a part
    with an empty mask (missing in that image) pools to zeros and is flagged
    invalid. One batched matrix product, no loop over images or parts.
    """
    if masks.shape[0] != fmap.shape[0] or masks.shape[-2:] != fmap.shape[-2:]:
        raise ValueError(
            f"part masks have shape {tuple(masks.shape)} but the feature map is "
            f"{tuple(fmap.shape)}: masks must be (B, P, S, S) with S = {fmap.shape[-1]} "
            "(use prreid_lib.model.grid_size(input_size, last_stride))"
        )
    flat_mask = masks.flatten(2).to(fmap.dtype)  # (B, P, S*S)
    counts = flat_mask.sum(-1, keepdim=True)  # (B, P, 1)
    summed = torch.bmm(flat_mask, fmap.flatten(2).transpose(1, 2))  # (B, P, C)
    return summed / counts.clamp_min(1), counts.squeeze(-1) > 0


class _Head(nn.Module):
    """1x1 conv (linear) to ``feat_dim``, optional BNNeck, identity classifier."""

    def __init__(self, in_dim: int, feat_dim: int, num_classes: int, bnneck: bool) -> None:
        super().__init__()
        self.embed = nn.Linear(in_dim, feat_dim)
        self.bn = nn.BatchNorm1d(feat_dim) if bnneck else None
        if self.bn is not None:
            self.bn.bias.requires_grad_(False)  # BNNeck (Luo et al. 2019): no shift
        self.classifier = nn.Linear(feat_dim, num_classes, bias=not bnneck)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feat = self.embed(x)
        neck = self.bn(feat) if self.bn is not None else feat
        return feat, neck, self.classifier(neck)


class PartRegularizedReID(nn.Module):
    """ResNet + global branch + one branch per part (paper Fig. 2, Eq. 3).

    ``forward(images, part_masks=None)`` takes normalised float images
    (B, 3, H, W) and optional part masks (B, P, S, S) in the order of
    ``parts`` and returns a dict: ``global_feat`` (B, D) (before the BNNeck),
    ``global_neck`` (B, D) (after it; equal without BNNeck), ``global_logits``
    (B, C) and, with masks, ``part_feat`` / ``part_neck`` (B, P, D),
    ``part_logits`` (B, P, C) and ``part_valid`` (B, P). ``features`` gives the
    test-time descriptor. ``use_global=False`` marks a parts-only model (its
    test descriptor is the concatenation of the part features).
    """

    input_size: int
    """Side in pixels of the square training images; set by training and by loading a run."""
    pid_values: np.ndarray
    """The original identity of each class index; set by training and by loading a run."""

    def __init__(
        self,
        num_classes: int,
        arch: str = "resnet18",
        last_stride: int = 1,
        feat_dim: int = 256,
        parts: Sequence[str] = PART_NAMES,
        pretrained: str | Path | None = None,
        bnneck: bool = False,
        use_global: bool = True,
    ) -> None:
        super().__init__()
        unknown = [p for p in parts if p not in PART_NAMES]
        if unknown:
            raise ValueError(f"unknown parts {unknown}; parts must be among {PART_NAMES}")
        if not use_global and not parts:
            raise ValueError("a model with use_global=False needs at least one part branch")
        self.arch, self.last_stride, self.feat_dim = arch, last_stride, feat_dim
        self.num_classes, self.parts = num_classes, tuple(parts)
        self.bnneck, self.use_global = bnneck, use_global
        self.pretrained = None if pretrained is None else str(pretrained)
        self.backbone = build_backbone(arch, last_stride, pretrained)
        in_dim = ARCHS[arch]
        self.global_head = _Head(in_dim, feat_dim, num_classes, bnneck)
        self.part_heads = nn.ModuleDict(
            {p: _Head(in_dim, feat_dim, num_classes, bnneck) for p in self.parts}
        )

    def init_kwargs(self) -> dict:
        """The constructor arguments (pretrained left out), to rebuild the model from a file."""
        return {
            "num_classes": self.num_classes,
            "arch": self.arch,
            "last_stride": self.last_stride,
            "feat_dim": self.feat_dim,
            "parts": list(self.parts),
            "bnneck": self.bnneck,
            "use_global": self.use_global,
        }

    def grid_size(self, input_size: int) -> int:
        """Side S of the feature grid for square inputs of ``input_size`` pixels."""
        return grid_size(input_size, self.last_stride, self.arch)

    def forward(self, images: torch.Tensor, part_masks: torch.Tensor | None = None) -> dict:
        fmap = self.backbone(images)
        out: dict[str, torch.Tensor] = {}
        feat, neck, logits = self.global_head(fmap.mean(dim=(2, 3)))
        out.update(global_feat=feat, global_neck=neck, global_logits=logits)
        if self.parts and part_masks is not None:
            if part_masks.shape[1] != len(self.parts):
                raise ValueError(
                    f"part_masks has {part_masks.shape[1]} parts, the model has "
                    f"{len(self.parts)} ({', '.join(self.parts)})"
                )
            pooled, valid = local_average_pool(fmap, part_masks)
            heads = [self.part_heads[p](pooled[:, i]) for i, p in enumerate(self.parts)]
            out["part_feat"] = torch.stack([h[0] for h in heads], 1)
            out["part_neck"] = torch.stack([h[1] for h in heads], 1)
            out["part_logits"] = torch.stack([h[2] for h in heads], 1)
            out["part_valid"] = valid
        return out

    @torch.no_grad()
    def features(
        self, images: torch.Tensor, part_masks: torch.Tensor | None = None, mode: str | None = None
    ) -> torch.Tensor:
        """Test-time descriptor (B, D'): ``mode`` ``"global"``, ``"parts"`` or ``"fused"``.

        ``"global"`` (the paper's test feature) is the global 256-d feature
        (after the BNNeck when the model has one); ``"parts"`` concatenates the
        part features (P x 256, needs ``part_masks``); ``"fused"`` is both.
        Default: ``"global"``, or ``"parts"`` for a parts-only model.
        """
        mode = mode or ("global" if self.use_global else "parts")
        if mode not in ("global", "parts", "fused"):
            raise ValueError(f"mode must be 'global', 'parts' or 'fused', got {mode!r}")
        if mode != "global" and part_masks is None:
            raise ValueError(
                f"features(mode={mode!r}) needs part_masks: give part boxes of the test images"
            )
        out = self(images, part_masks if mode != "global" else None)
        key = "neck" if self.bnneck else "feat"
        if mode == "global":
            return out[f"global_{key}"]
        parts = out[f"part_{key}"].flatten(1)
        return parts if mode == "parts" else torch.cat([out[f"global_{key}"], parts], 1)


def extract_features(
    model: PartRegularizedReID,
    images: torch.Tensor,
    part_masks: torch.Tensor | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    mode: str | None = None,
    normalize: bool = False,
) -> torch.Tensor:
    """Descriptors (N, D') of ``images`` (uint8 (N, 3, H, W), resized to the training size).

    Runs ``model.features`` in eval mode in batches on ``device`` (default: the
    model's) and returns a float32 CPU tensor. ``mode`` as in
    :meth:`PartRegularizedReID.features`; ``normalize=True`` L2-normalises the
    rows (for cosine distance; the paper uses plain L2 distance). On a CPU the
    batches are channels-last, 64 images each by default (22 % faster than
    contiguous batches of 256 on 2 cores, same features to 1e-5); 256 elsewhere.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    cpu = device.type == "cpu"
    batch_size = batch_size or (64 if cpu else 256)
    mode = mode or ("global" if model.use_global else "parts")
    was_training = model.training
    model.eval()
    feats = []
    try:
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size].to(device, non_blocking=True)
            batch = normalize_images(batch) if batch.dtype == torch.uint8 else batch.float()
            if cpu:
                batch = batch.contiguous(memory_format=torch.channels_last)
            masks = None
            if part_masks is not None:
                masks = part_masks[start : start + batch_size].to(device)
            feats.append(model.features(batch, masks, mode=mode).float().cpu())
    finally:
        model.train(was_training)
    if not feats:
        n_parts = len(model.parts)
        dim = model.feat_dim * {"global": 1, "parts": n_parts, "fused": 1 + n_parts}[mode]
        return torch.zeros(0, dim)
    out = torch.cat(feats)
    return F.normalize(out, dim=1) if normalize else out
