"""ImageNet colour statistics and the normalisation every network input goes through.

A leaf module: the training pipeline (``prreid_lib.pipeline.transforms``),
the model's feature extraction, the CAMs and the exported graph all
normalise with these numbers, and none of them has to import another for it.
"""

from __future__ import annotations

import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) in [0, 255] -> float, normalised by the ImageNet mean and std."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std
