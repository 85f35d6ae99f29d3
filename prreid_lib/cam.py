"""Class activation maps of the global branch (paper Fig. 5; Zhou et al., CVPR 2016).

The global branch average-pools the backbone's feature map ``f`` (C, S, S) to
``g = mean_ij f[:, i, j]``, maps it to 256-d with a 1x1 convolution (a linear
layer), optionally through a BNNeck (in eval mode an affine map), and scores
the identities with a linear classifier. Every step after the pooling is
affine, so the logit of class ``c`` is ``w_c . g + b_c`` for one vector ``w_c``
(C,) and one number ``b_c`` (:func:`global_class_weights`). Because the
pooling is a mean, ``w_c . g = mean_ij w_c . f[:, i, j]``: the class
activation map ``CAM_c[i, j] = w_c . f[:, i, j]`` splits the logit (less its
bias) exactly over the S x S cells. This is the exact CAM, not a gradient
approximation; Grad-CAM gives ``max(CAM_c, 0) / S^2`` on this architecture.

:func:`activation_share_in_parts` measures where a map puts its positive mass:
the share inside the union of the part boxes, and inside each part, which
chapter 8 compares with the area the parts cover (what a uniform map gives).
The part branches take no part in the CAM: at test time only the global
feature is used (Sec. 4.2).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from prreid_lib.config import PART_NAMES
from prreid_lib.imagenet import normalize_images
from prreid_lib.model import PartRegularizedReID


def global_class_weights(model: PartRegularizedReID) -> tuple[torch.Tensor, torch.Tensor]:
    """The affine map from the pooled feature to the global logits: ``(W (K, C), b (K,))``.

    ``logits = W @ g + b`` for the average-pooled backbone feature ``g`` (C,)
    of one image, K classes. Composes the 1x1 convolution (``embed``), the
    BNNeck in eval mode (running statistics) when the model has one, and the
    classifier. Computed in float64 so the identity ``mean(CAM) + b = logit``
    holds to rounding.
    """
    head = model.global_head
    w_e = head.embed.weight.detach().double()  # (D, C)
    b_e = head.embed.bias.detach().double()  # (D,)
    if head.bn is not None:
        bn = head.bn
        mean, var = bn.running_mean, bn.running_var
        if mean is None or var is None:
            raise ValueError("the model's BNNeck keeps no running statistics; its CAM is undefined")
        scale = bn.weight.detach().double() / torch.sqrt(var.double() + bn.eps)
        w_e = scale[:, None] * w_e
        b_e = scale * (b_e - mean.double()) + bn.bias.detach().double()
    w_c = head.classifier.weight.detach().double()  # (K, D)
    b_c = head.classifier.bias
    bias = w_c @ b_e + (b_c.detach().double() if b_c is not None else 0.0)
    return w_c @ w_e, bias


def identity_classes(model: PartRegularizedReID, pids: Sequence[int] | np.ndarray) -> torch.Tensor:
    """Classifier indices (N,) of training identities ``pids``, from ``model.pid_values``.

    Training relabels the identities to 0..K-1 in increasing pid order
    (:class:`prreid_lib.pipeline.imageset.ReIDImageSet`); a trained model carries
    the original pid of each class as ``pid_values``. A pid the model was not
    trained on raises ``ValueError`` (its CAM would have no class to explain).
    """
    values = getattr(model, "pid_values", None)
    if values is None:
        raise ValueError(
            "the model has no pid_values: use a model from prreid_lib.runs.load_trained or "
            "train_reid, or pass classifier indices to class_activation_maps directly"
        )
    values, pids = np.asarray(values), np.asarray(pids)
    idx = np.clip(np.searchsorted(values, pids), 0, max(len(values) - 1, 0))
    unknown = pids[values[idx] != pids] if len(values) else pids
    if len(unknown):
        raise ValueError(
            f"identities {unknown[:5].tolist()} are not among the model's {len(values)} training "
            "identities: class activation maps need training images (or pass classes=None)"
        )
    return torch.as_tensor(idx, dtype=torch.long)


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> uint8 (B, 3, size, size), torch's bilinear interpolation.

    Not the decoder's filter (Pillow's bilinear, which averages when it
    shrinks): images decoded at ``size`` by
    ``prreid_lib.pipeline.imageset.decode_images`` pass unchanged and are
    exactly what training and evaluation see.
    """
    if images.shape[-2:] == (size, size):
        return images
    out = F.interpolate(images.float(), size=(size, size), mode="bilinear", align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8)


@torch.no_grad()
def class_activation_maps(
    model: PartRegularizedReID,
    images: torch.Tensor,
    classes: torch.Tensor | Sequence[int] | np.ndarray | None = None,
    input_size: int | None = None,
    batch_size: int = 64,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Exact class activation maps (N, S, S) of the global branch, float32 on the CPU.

    ``images`` are uint8 (N, 3, H, W), as
    ``prreid_lib.pipeline.imageset.decode_images`` decodes them for training
    and evaluation (:mod:`prreid_lib.images`) at ``input_size``, default the
    model's training size ``model.input_size``; images of another size are
    resized with torch's bilinear interpolation, which differs from the
    decoder's resize; ``classes``
    (N,) are classifier indices (0..K-1, the relabelled training identities,
    see ``model.pid_values``); ``None`` uses each image's predicted class (the
    arg-max of the global logits). ``CAM[n, i, j] = w_c . f_n[:, i, j]`` with
    ``w_c`` from :func:`global_class_weights`, so ``CAM[n].mean()`` equals the
    class logit minus its bias. The model runs in eval mode on ``device``
    (default: the model's), in batches.
    """
    if not model.use_global:
        raise ValueError(
            "class_activation_maps needs a model with a global branch (use_global=True); "
            "a parts-only model's global classifier was never trained"
        )
    size = input_size or getattr(model, "input_size", None)
    if size is None:
        raise ValueError(
            "input_size is unknown: pass input_size= (the training size) or a model from "
            "prreid_lib.runs.load_trained / train_reid, which carries it"
        )
    if images.dim() != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
        raise ValueError(
            f"images must be uint8 (N, 3, H, W); got {images.dtype} {tuple(images.shape)} "
            "(use prreid_lib.pipeline.imageset.decode_images)"
        )
    n = len(images)
    if classes is not None:
        classes = torch.as_tensor(np.asarray(classes), dtype=torch.long)
        if classes.shape != (n,):
            raise ValueError(f"classes must have shape ({n},), got {tuple(classes.shape)}")
        bad = (classes < 0) | (classes >= model.num_classes)
        if bool(bad.any()):
            raise ValueError(
                f"classes must lie in 0..{model.num_classes - 1} (the model's training "
                f"identities); got {classes[bad][:5].tolist()}"
            )
    device = torch.device(device) if device is not None else next(model.parameters()).device
    weight, bias = global_class_weights(model)
    weight, bias = weight.float().to(device), bias.float().to(device)
    was_training = model.training
    model.eval()
    maps = []
    try:
        for start in range(0, n, batch_size):
            batch = _resize(images[start : start + batch_size], int(size)).to(device)
            fmap = model.backbone(normalize_images(batch))  # (B, C, S, S)
            if classes is None:
                cls = (fmap.mean(dim=(2, 3)) @ weight.T + bias).argmax(1)
            else:
                cls = classes[start : start + batch_size].to(device)
            maps.append(torch.einsum("bc,bcij->bij", weight[cls], fmap).float().cpu())
    finally:
        model.train(was_training)
    if not maps:
        s = model.grid_size(int(size))
        return torch.zeros(0, s, s)
    return torch.cat(maps)


def upsample_cams(cams: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Bilinear upsampling of maps (N, S, S) to ``size`` (H, W) or (size, size), as Zhou et al.

    The maps live on the normalised image (cell (i, j) covers
    ``[j/S, (j+1)/S) x [i/S, (i+1)/S)``), so any output size, square or the
    original image's aspect, lines up with the image it is drawn over.
    """
    if cams.dim() != 3:
        raise ValueError(f"cams must be (N, S, S), got shape {tuple(cams.shape)}")
    out = (size, size) if isinstance(size, int) else tuple(size)
    return F.interpolate(cams[:, None].float(), size=out, mode="bilinear", align_corners=False)[
        :, 0
    ]


def box_masks(
    boxes: torch.Tensor, valid: torch.Tensor, size: int | tuple[int, int]
) -> torch.Tensor:
    """Pixel masks (N, P, H, W) of normalised part boxes (N, P, K, 4) with validity (N, P, K).

    A pixel (cell) belongs to a part when its centre lies inside one of the
    part's valid boxes (``x1 <= x < x2``, ``y1 <= y < y2`` in [0, 1]
    coordinates); boxes of one part (two lights) are united. Boxes come from
    :class:`prreid_lib.pipeline.imageset.ReIDImageSet` (``boxes``, ``box_valid``).
    """
    if boxes.dim() != 4 or boxes.shape[-1] != 4 or valid.shape != boxes.shape[:-1]:
        raise ValueError(
            f"boxes must be (N, P, K, 4) and valid (N, P, K); got {tuple(boxes.shape)} and "
            f"{tuple(valid.shape)}"
        )
    h, w = (size, size) if isinstance(size, int) else size
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) / w
    b = boxes.float()[..., None, None, :]  # (N, P, K, 1, 1, 4)
    inside_x = (xs >= b[..., 0]) & (xs < b[..., 2])  # (N, P, K, 1, W)
    inside_y = (ys[:, None] >= b[..., 1]) & (ys[:, None] < b[..., 3])  # (N, P, K, H, 1)
    inside = inside_x & inside_y & valid[..., None, None].bool()
    return inside.any(dim=2)


def activation_share_in_parts(
    cams: torch.Tensor,
    part_masks: torch.Tensor,
    parts: Sequence[str] = PART_NAMES,
) -> pd.DataFrame:
    """Share of each map's positive mass inside the part boxes: one row per image.

    ``cams`` (N, h, w) are class activation maps (grid or upsampled; they are
    upsampled bilinearly to the masks' size when it differs); ``part_masks``
    (N, P, H, W) boolean, e.g. from :func:`box_masks`, in the order of
    ``parts``. Columns: ``"parts"``, the share of ``sum max(CAM, 0)`` that lies
    in the union of the part masks, and one column per part (parts may
    overlap, so these need not add up to the union). A map without positive
    mass gives NaN. A uniform map gives the area share of the parts, the
    reference a map that ignores the parts would reach.
    """
    if part_masks.dim() != 4 or part_masks.shape[0] != cams.shape[0]:
        raise ValueError(
            f"part_masks must be (N, P, H, W) with N = {cams.shape[0]} (the number of maps); "
            f"got {tuple(part_masks.shape)}"
        )
    if part_masks.shape[1] != len(parts):
        raise ValueError(
            f"part_masks has {part_masks.shape[1]} parts but parts names {len(parts)}: {parts}"
        )
    size = (part_masks.shape[-2], part_masks.shape[-1])
    maps = cams.float() if tuple(cams.shape[-2:]) == size else upsample_cams(cams, size)
    positive = maps.clamp_min(0).double()
    total = positive.sum(dim=(1, 2))
    masks = part_masks.bool()
    columns = {"parts": masks.any(dim=1)} | {p: masks[:, k] for k, p in enumerate(parts)}
    shares = {name: ((positive * m).sum(dim=(1, 2)) / total).numpy() for name, m in columns.items()}
    return pd.DataFrame(shares)
