"""Class activation maps: the exact CAM splits the logit over the cells; shares in part boxes."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
import torch

from prreid_lib.cam import (
    activation_share_in_parts,
    box_masks,
    class_activation_maps,
    global_class_weights,
    identity_classes,
    upsample_cams,
)
from prreid_lib.imagenet import normalize_images
from prreid_lib.model import PartRegularizedReID

torch.set_num_threads(1)  # the CI machine is shared; more threads only contend
N_CLASSES = 5


@cache
def tiny_model(bnneck: bool) -> PartRegularizedReID:
    """A random ResNet-18 model (built once); a BNNeck gets non-trivial running statistics."""
    torch.manual_seed(0)
    model = PartRegularizedReID(N_CLASSES, "resnet18", last_stride=1, feat_dim=16, bnneck=bnneck)
    if bnneck:
        bn = model.global_head.bn
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.3, 0.3)
    model.input_size = 64
    return model.eval()


def random_images(n: int, size: int = 64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (n, 3, size, size), generator=gen, dtype=torch.uint8)


@pytest.mark.parametrize("bnneck", [False, True])
def test_cam_mean_plus_bias_equals_the_models_logit(bnneck):
    model = tiny_model(bnneck)
    images = random_images(3)
    with torch.no_grad():
        logits = model(normalize_images(images))["global_logits"].double()
    classes = torch.tensor([0, 3, 4])
    cams = class_activation_maps(model, images, classes)
    assert cams.shape == (3, 4, 4)  # 64 px, last stride 1: S = 64 / 16
    _, bias = global_class_weights(model)
    expected = logits[torch.arange(3), classes] - bias[classes]
    scale = float(logits.abs().max()) + 1.0
    torch.testing.assert_close(cams.double().mean(dim=(1, 2)), expected, atol=1e-5 * scale, rtol=0)
    # the affine map reproduces every logit, not only the chosen ones
    weight, bias = global_class_weights(model)
    with torch.no_grad():
        pooled = model.backbone(normalize_images(images)).mean(dim=(2, 3)).double()
    torch.testing.assert_close(pooled @ weight.T + bias, logits, atol=1e-5 * scale, rtol=0)


def test_default_class_is_the_prediction():
    model = tiny_model(False)
    images = random_images(4)
    with torch.no_grad():
        predicted = model(normalize_images(images))["global_logits"].argmax(1)
    torch.testing.assert_close(
        class_activation_maps(model, images), class_activation_maps(model, images, predicted)
    )


def test_cam_equals_gradient_times_feature_map():
    """Independent check: d logit_c / d f[:, i, j] = w_c / S^2, so CAM = S^2 * sum_k grad_k f_k."""
    model = tiny_model(True)
    images = random_images(2)
    fmap = model.backbone(normalize_images(images)).detach().requires_grad_(True)
    logits = model.global_head(fmap.mean(dim=(2, 3)))[2]
    classes = torch.tensor([2, 1])
    logits[torch.arange(2), classes].sum().backward()
    s = fmap.shape[-1]
    expected = (fmap.grad * fmap).sum(1).detach() * s * s
    cams = class_activation_maps(model, images, classes)
    torch.testing.assert_close(cams, expected, atol=1e-4 * float(expected.abs().max()), rtol=0)


def test_shapes_resizing_and_errors(monkeypatch):
    model = tiny_model(False)
    assert class_activation_maps(model, random_images(2, 32), input_size=32).shape == (2, 2, 2)
    assert class_activation_maps(model, random_images(2, 48)).shape == (2, 4, 4)  # resized to 64
    assert class_activation_maps(model, random_images(0)).shape == (0, 4, 4)
    with pytest.raises(ValueError, match="0..4"):
        class_activation_maps(model, random_images(1), [N_CLASSES])
    with pytest.raises(ValueError, match="uint8"):
        class_activation_maps(model, random_images(1).float())
    monkeypatch.setattr(model, "use_global", False)  # a parts-only model
    with pytest.raises(ValueError, match="global branch"):
        class_activation_maps(model, random_images(1))


def test_box_masks_mark_cells_whose_centre_is_inside():
    boxes = torch.zeros(1, 3, 2, 4)
    valid = torch.zeros(1, 3, 2, dtype=torch.bool)
    boxes[0, 0, 0] = torch.tensor([0.25, 0.25, 0.75, 0.5])  # window: row 1, columns 1 and 2
    valid[0, 0, 0] = True
    boxes[0, 1, 0] = torch.tensor([0.0, 0.75, 0.25, 1.0])  # light left: cell (3, 0)
    boxes[0, 1, 1] = torch.tensor([0.75, 0.75, 1.0, 1.0])  # light right: cell (3, 3)
    valid[0, 1] = True
    boxes[0, 2, 0] = torch.tensor([0.0, 0.0, 1.0, 1.0])  # brand box present but not valid
    masks = box_masks(boxes, valid, 4)
    assert masks.shape == (1, 3, 4, 4)
    assert masks[0, 0].nonzero().tolist() == [[1, 1], [1, 2]]
    assert masks[0, 1].nonzero().tolist() == [[3, 0], [3, 3]]
    assert not masks[0, 2].any()
    assert box_masks(boxes, valid, (8, 16)).shape == (1, 3, 8, 16)


def test_share_in_parts_on_hand_made_maps():
    # image 0: mass 1 at (0, 0) and 3 at (3, 3), negative elsewhere (ignored)
    # image 1: uniform map -> the area share; image 2: no positive mass -> NaN
    cams = torch.full((3, 4, 4), -2.0)
    cams[0, 0, 0], cams[0, 3, 3] = 1.0, 3.0
    cams[1] = 1.0
    masks = torch.zeros(3, 3, 4, 4, dtype=torch.bool)
    masks[:, 0, 0, 0] = True  # window: cell (0, 0)
    masks[:, 1, 3, :] = True  # light: bottom row, 4 cells
    masks[:, 2, 3, 3] = True  # brand: cell (3, 3), inside the light row
    share = activation_share_in_parts(cams, masks)
    assert list(share.columns) == ["parts", "window", "light", "brand"]
    np.testing.assert_allclose(share.loc[0].to_numpy(), [1.0, 0.25, 0.75, 0.75])
    np.testing.assert_allclose(share.loc[1].to_numpy(), [5 / 16, 1 / 16, 4 / 16, 1 / 16])
    assert share.loc[2].isna().all()
    # a map with all its mass outside the parts scores 0
    outside = torch.zeros(1, 4, 4)
    outside[0, 1, 1] = 7.0
    assert activation_share_in_parts(outside, masks[:1]).loc[0].tolist() == [0.0] * 4


def test_grid_maps_are_upsampled_to_the_masks():
    cams = torch.ones(2, 4, 4)
    up = upsample_cams(cams, (32, 48))
    assert up.shape == (2, 32, 48)
    torch.testing.assert_close(up, torch.ones(2, 32, 48))
    masks = torch.zeros(2, 1, 32, 32, dtype=torch.bool)
    masks[:, 0, :16, :] = True  # top half
    share = activation_share_in_parts(cams, masks, parts=("window",))
    np.testing.assert_allclose(share["parts"], [0.5, 0.5])
    with pytest.raises(ValueError, match="parts names"):
        activation_share_in_parts(cams, masks)


def test_identity_classes_follow_the_sorted_training_pids(monkeypatch):
    model = tiny_model(False)
    pids = np.array([3, 7, 10, 42, 99])  # relabelled 0..4 in increasing order
    monkeypatch.setattr(model, "pid_values", pids, raising=False)
    assert identity_classes(model, [42, 3, 99, 7]).tolist() == [3, 0, 4, 1]
    with pytest.raises(ValueError, match=r"\[5, 100\]"):
        identity_classes(model, [5, 7, 100])
