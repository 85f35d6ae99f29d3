"""Batched augmentations on uint8 image tensors that move the part boxes with the image.

Every function takes a whole batch (B, 3, H, W) and normalised part boxes
(B, P, K, 4) in ``(x1, y1, x2, y2)`` with a validity mask (B, P, K), and runs
on the batch's device (CPU or GPU) without a loop over images. Random draws
come from a CPU ``torch.Generator`` so a seeded run augments identically on
any device and after a resume.

- horizontal flip: pixel column j goes to W-1-j and a box edge x to 1-x, so
  ``(x1, x2) -> (1-x2, 1-x1)``; nothing but coordinates changes (the left and
  right light keep their slots);
- random crop after zero padding (``pad`` pixels each side, as in re-id
  baselines): a crop offset (ox, oy) in [0, 2*pad] shifts the image by
  (pad-ox, pad-oy) pixels; boxes shift by the same amount, are clipped to the
  image, and a box clipped to nothing becomes invalid;
- optional colour jitter (brightness, contrast, saturation), then ImageNet
  normalisation to float.

The moved boxes become the model's grid masks in
:func:`prreid_lib.parts.boxes_to_masks`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from prreid_lib.imagenet import normalize_images


@dataclass(frozen=True)
class AugmentConfig:
    """Flip probability, padding of the random crop (0: no crop), colour jitter strength."""

    flip: float = 0.5
    pad: int = 4
    color_jitter: float = 0.0


def hflip(
    images: torch.Tensor, boxes: torch.Tensor, flip: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip the images where ``flip`` (B,) is true, and their boxes with them."""
    sel = flip.to(images.device).view(-1, 1, 1, 1)
    images = torch.where(sel, images.flip(-1), images)
    flipped = torch.stack(
        [1 - boxes[..., 2], boxes[..., 1], 1 - boxes[..., 0], boxes[..., 3]], dim=-1
    )
    sel_b = flip.to(boxes.device).view(-1, *([1] * (boxes.dim() - 1)))
    return images, torch.where(sel_b, flipped, boxes)


def pad_crop(
    images: torch.Tensor,
    boxes: torch.Tensor,
    valid: torch.Tensor,
    pad: int,
    offsets: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Zero-pad by ``pad`` pixels and crop back to H x W at ``offsets`` (B, 2) = (ox, oy).

    Output pixel (y, x) is input pixel (y + oy - pad, x + ox - pad) (zero
    outside); boxes move by ``(pad - ox) / W`` and ``(pad - oy) / H``, are
    clipped to [0, 1], and become invalid when nothing is left of them.
    """
    b, _, h, w = images.shape
    if pad <= 0:
        return images, boxes, valid
    offsets = offsets.to(images.device)
    padded = F.pad(images, (pad, pad, pad, pad))
    rows = offsets[:, 1, None] + torch.arange(h, device=images.device)  # (B, H)
    cols = offsets[:, 0, None] + torch.arange(w, device=images.device)  # (B, W)
    batch = torch.arange(b, device=images.device)[:, None, None]
    out = padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    shift = (pad - offsets.to(boxes.device, boxes.dtype)) / torch.tensor(
        [w, h], device=boxes.device, dtype=boxes.dtype
    )
    shift = shift.repeat(1, 2).view(b, *([1] * (boxes.dim() - 2)), 4)
    moved = (boxes + shift).clamp(0.0, 1.0)
    nonempty = (moved[..., 2] > moved[..., 0]) & (moved[..., 3] > moved[..., 1])
    return out.contiguous(), moved, valid & nonempty


def color_jitter(images: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Brightness, contrast, saturation factors (B, 3) applied to float images in [0, 1]."""
    f = factors.to(images.device, images.dtype)
    x = images * f[:, 0, None, None, None]
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * f[:, 1, None, None, None] + mean
    gray = (x * torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)).sum(
        1, keepdim=True
    )
    x = (x - gray) * f[:, 2, None, None, None] + gray
    return x.clamp(0.0, 1.0)


def augment_batch(
    images: torch.Tensor,
    boxes: torch.Tensor,
    valid: torch.Tensor,
    cfg: AugmentConfig,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flip, pad-crop, (jitter) a uint8 batch and move its boxes; return normalised float images.

    Random parameters are drawn on the CPU from ``generator`` in a fixed
    order (flip, offsets, jitter), whatever the device of ``images``.
    """
    b = images.shape[0]
    flip = torch.rand(b, generator=generator) < cfg.flip
    offsets = torch.randint(0, 2 * cfg.pad + 1, (b, 2), generator=generator)
    if cfg.flip > 0:
        images, boxes = hflip(images, boxes, flip)
    if cfg.pad > 0:
        images, boxes, valid = pad_crop(images, boxes, valid, cfg.pad, offsets)
    if cfg.color_jitter > 0:
        s = cfg.color_jitter
        factors = 1 - s + 2 * s * torch.rand(b, 3, generator=generator)
        x = color_jitter(images.float() / 255.0, factors)
        images = (x * 255.0).round().to(torch.uint8)
    return normalize_images(images), boxes, valid
