"""The part-regularized model: grid projection and local average pooling, heads, weights file."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from prreid_lib.model import (
    PartRegularizedReID,
    extract_features,
    grid_size,
    local_average_pool,
)
from prreid_lib.parts import boxes_to_masks

torch.set_num_threads(2)


class _FixedMap(nn.Module):
    """A stand-in backbone that returns a known (B, C, 4, 4) feature map."""

    def __init__(self, fmap: torch.Tensor) -> None:
        super().__init__()
        self.fmap = fmap

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fmap


def _identity_heads(model: PartRegularizedReID) -> None:
    """Make every 1x1-conv embedding the identity, so part features are the pooled features."""
    with torch.no_grad():
        for head in [model.global_head, *model.part_heads.values()]:
            head.embed.weight.copy_(torch.eye(head.embed.weight.shape[0]))
            head.embed.bias.zero_()


@pytest.fixture(scope="module")
def model_512() -> PartRegularizedReID:
    model = PartRegularizedReID(num_classes=5, arch="resnet18", feat_dim=512)
    _identity_heads(model)
    return model.eval()


def test_grid_size_matches_backbone():
    assert grid_size(64, 1) == 4 and grid_size(64, 2) == 2
    assert grid_size(256, 1) == 16 and grid_size(96, 1) == 6 and grid_size(100, 2) == 4
    model = PartRegularizedReID(num_classes=3, arch="resnet18", last_stride=1).eval()
    assert model.backbone(torch.zeros(1, 3, 64, 64)).shape == (1, 512, 4, 4)
    model2 = PartRegularizedReID(num_classes=3, arch="resnet18", last_stride=2).eval()
    assert model2.backbone(torch.zeros(1, 3, 64, 64)).shape == (1, 512, 2, 2)
    assert model.grid_size(64) == 4 and model2.grid_size(64) == 2


def test_local_pooling_through_the_model_averages_the_overlapped_cells(model_512):
    # feature map: channel c at cell (i, j) = 100 c + 10 i + j, batch of 1, S = 4
    c, i, j = torch.meshgrid(
        torch.arange(512.0), torch.arange(4.0), torch.arange(4.0), indexing="ij"
    )
    fmap = (100 * c + 10 * i + j)[None]
    model_512.backbone = _FixedMap(fmap)
    # window (0.30, 0.05)-(0.70, 0.40): columns 1, 2 (0.25-0.75), rows 0, 1 (0-0.5)
    # lights (0, .6)-(.2, 1) and (.8, .6)-(1, 1): cells (2,0) (3,0) (2,3) (3,3)
    # brand (0.25, 0.25)-(0.5, 0.5): touches column 2 / row 2 with zero area -> only cell (1, 1)
    boxes = torch.tensor(
        [[[[0.30, 0.05, 0.70, 0.40], [0, 0, 0, 0]],
          [[0.0, 0.6, 0.2, 1.0], [0.8, 0.6, 1.0, 1.0]],
          [[0.25, 0.25, 0.5, 0.5], [0, 0, 0, 0]]]]
    )  # fmt: skip
    valid = torch.tensor([[[True, False], [True, True], [True, False]]])
    masks = boxes_to_masks(boxes, valid, 4)
    out = model_512(torch.zeros(1, 3, 64, 64), masks)
    expected_cells = {
        0: [(0, 1), (0, 2), (1, 1), (1, 2)],
        1: [(2, 0), (3, 0), (2, 3), (3, 3)],
        2: [(1, 1)],
    }
    chan = 100 * torch.arange(512.0)
    for part, cells in expected_cells.items():
        mean_ij = sum(10 * a + b for a, b in cells) / len(cells)
        torch.testing.assert_close(out["part_feat"][0, part], chan + mean_ij)
    # the global branch is plain global average pooling: mean of 10 i + j over 4x4 = 16.5
    torch.testing.assert_close(out["global_feat"][0], chan + 16.5)
    assert out["part_valid"].tolist() == [[True, True, True]]


def test_missing_part_pools_to_zero_and_is_invalid():
    fmap = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).view(2, 3, 2, 2)
    masks = torch.zeros(2, 2, 2, 2)
    masks[0, 0, 0, 0] = masks[0, 0, 1, 1] = 1  # image 0, part 0: cells (0,0), (1,1)
    masks[1, 1] = 1  # image 1, part 1: all cells
    pooled, valid = local_average_pool(fmap, masks)
    torch.testing.assert_close(pooled[0, 0], (fmap[0, :, 0, 0] + fmap[0, :, 1, 1]) / 2)
    torch.testing.assert_close(pooled[1, 1], fmap[1].mean(dim=(1, 2)))
    assert pooled[0, 1].abs().sum() == 0 and pooled[1, 0].abs().sum() == 0
    assert valid.tolist() == [[True, False], [False, True]]
    with pytest.raises(ValueError, match="S = 2"):
        local_average_pool(fmap, torch.zeros(2, 2, 3, 3))


def test_forward_shapes_features_and_parts_only_eval():
    torch.manual_seed(0)
    model = PartRegularizedReID(num_classes=7, arch="resnet18", feat_dim=16, bnneck=True)
    images = torch.randn(3, 3, 32, 32)
    masks = torch.ones(3, 3, 2, 2)
    out = model(images, masks)
    assert out["global_feat"].shape == (3, 16) and out["global_logits"].shape == (3, 7)
    assert out["part_logits"].shape == (3, 3, 7) and out["part_feat"].shape == (3, 3, 16)
    assert "part_logits" not in model(images)  # no masks: global branch only
    with pytest.raises(ValueError, match="parts"):
        model(images, torch.ones(3, 2, 2, 2))
    model.eval()
    g = model.features(images)
    torch.testing.assert_close(g, model.global_head.bn(model.global_head.embed(
        model.backbone(images).mean(dim=(2, 3)))))  # fmt: skip
    assert model.features(images, masks, mode="parts").shape == (3, 48)
    assert model.features(images, masks, mode="fused").shape == (3, 64)
    with pytest.raises(ValueError, match="part_masks"):
        model.features(images, mode="parts")
    parts_only = PartRegularizedReID(num_classes=7, feat_dim=16, use_global=False).eval()
    assert parts_only.features(images, masks).shape == (3, 48)  # default mode: parts


def test_extract_features_from_uint8_batches():
    torch.manual_seed(0)
    model = PartRegularizedReID(num_classes=4, feat_dim=8, parts=()).train()
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    feats = extract_features(model, images, batch_size=2)
    assert feats.shape == (5, 8) and feats.dtype == torch.float32 and model.training
    again = extract_features(model, images, batch_size=5, normalize=True)
    torch.testing.assert_close(again, torch.nn.functional.normalize(feats, dim=1))


def test_pretrained_weights_are_loaded_from_a_local_file(tmp_path):
    torch.manual_seed(1)
    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    model = PartRegularizedReID(num_classes=3, arch="resnet18", pretrained=path)
    torch.testing.assert_close(model.backbone.conv1.weight, reference.conv1.weight)
    torch.testing.assert_close(
        model.backbone.layer4[1].bn2.running_var, reference.layer4[1].bn2.running_var
    )
    assert model.pretrained == str(path)


def test_pretrained_missing_or_mismatched_file_is_a_clear_error(tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        PartRegularizedReID(num_classes=3, arch="resnet18", pretrained=missing)
    wrong = tmp_path / "resnet18_for_34.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), wrong)
    with pytest.raises(ValueError, match=r"resnet18_for_34.pth does not match resnet34.*missing"):
        PartRegularizedReID(num_classes=3, arch="resnet34", pretrained=wrong)
    shapes = tmp_path / "narrow.pth"
    state = torchvision.models.resnet18(weights=None).state_dict()
    state["conv1.weight"] = torch.zeros(32, 3, 7, 7)
    torch.save(state, shapes)
    with pytest.raises(ValueError, match=r"narrow.pth.*conv1.weight \(32, 3, 7, 7\)"):
        PartRegularizedReID(num_classes=3, arch="resnet18", pretrained=shapes)
    junk = tmp_path / "junk.pth"
    junk.write_text("not a torch file")
    with pytest.raises(ValueError, match="junk.pth could not be read"):
        PartRegularizedReID(num_classes=3, arch="resnet18", pretrained=junk)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="arch"):
        PartRegularizedReID(num_classes=3, arch="vgg16")
    with pytest.raises(ValueError, match="unknown parts"):
        PartRegularizedReID(num_classes=3, parts=("window", "wheel"))
    with pytest.raises(ValueError, match="use_global=False"):
        PartRegularizedReID(num_classes=3, parts=(), use_global=False)


def test_resnet18_cut_after_layer3_gives_twice_the_grid_at_a_quarter_of_the_weights():
    assert grid_size(64, 1, "resnet18_l3") == 8 and grid_size(64, 2, "resnet18_l3") == 4
    assert grid_size(256, 1, "resnet18_l3") == 32
    model = PartRegularizedReID(num_classes=3, arch="resnet18_l3").eval()
    assert model.grid_size(64) == 8
    assert model.backbone(torch.zeros(1, 3, 64, 64)).shape == (1, 256, 8, 8)
    assert "layer4" not in dict(model.backbone.named_children())
    full = PartRegularizedReID(num_classes=3, arch="resnet18").backbone
    weights = sum(p.numel() for p in model.backbone.parameters())
    assert weights < 0.3 * sum(p.numel() for p in full.parameters())
    masks = boxes_to_masks(
        torch.tensor([[[[0.0, 0.0, 0.5, 0.5]]] * 3]), torch.ones(1, 3, 1).bool(), 8
    )
    out = model(torch.zeros(1, 3, 64, 64), masks)
    assert out["part_feat"].shape == (1, 3, 256) and bool(out["part_valid"].all())


def test_resnet18_cut_after_layer3_loads_a_resnet18_weights_file_without_its_layer4(tmp_path):
    state = torchvision.models.resnet18(weights=None).state_dict()
    path = tmp_path / "resnet18.pt"
    torch.save(state, path)
    model = PartRegularizedReID(num_classes=3, arch="resnet18_l3", pretrained=path)
    loaded = model.backbone.state_dict()
    assert torch.equal(loaded["layer3.1.conv2.weight"], state["layer3.1.conv2.weight"])
    bigger = tmp_path / "resnet50.pt"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), bigger)
    with pytest.raises(ValueError, match="resnet50.pt does not match resnet18"):
        PartRegularizedReID(num_classes=3, arch="resnet18_l3", pretrained=bigger)


def test_the_paper_check_profile_runs_the_paper_profiles_model_and_batches():
    from prreid_lib.config import get_profile

    paper, check = get_profile("paper"), get_profile("paper-check")
    for name in ("arch", "input_size", "last_stride", "batch_size", "num_instances", "feat_dim"):
        assert getattr(check.train, name) == getattr(paper.train, name), name
    assert check.detector.model_yaml == paper.detector.model_yaml
    assert (check.detector.imgsz, check.detector.batch) == (
        paper.detector.imgsz,
        paper.detector.batch,
    )
    assert grid_size(check.train.input_size, check.train.last_stride, check.train.arch) == 16
    assert check.synth.image_size == paper.synth.image_size
    assert set(check.study.input_sizes) <= set(paper.study.input_sizes)
    images = check.synth.vehicleid_train_ids * check.synth.vehicleid_images_per_id
    assert images <= 2 * check.train.batch_size  # a few iterations per epoch
