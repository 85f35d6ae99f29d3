"""An image is what a viewer shows: one decoder for training, evaluation, extract and export.

Every test writes real files with PIL (EXIF-rotated JPEGs, 16-bit PNGs and
TIFFs, palette and alpha images, CMYK JPEGs) and reads them back through
:mod:`prreid_lib.images`, the training cache and ``prreid extract``.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

import prreid_lib.images as images
from prreid_lib.cli import main
from prreid_lib.errors import DatasetFormatError
from prreid_lib.images import ImageFileError, decode_rgb, shown_rgb, shown_size
from prreid_lib.pipeline.imageset import decode_image, decode_images

ROTATE = {3: 2, 6: -1, 8: 1}
"""EXIF orientation -> quarter turns (np.rot90, counter-clockwise) that stand the image up."""


def _noise(h: int = 480, w: int = 640, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _jpeg(path: Path, pixels: np.ndarray, orientation: int | None = None) -> Path:
    exif = Image.Exif()
    if orientation is not None:
        exif[images.ORIENTATION_TAG] = orientation
    Image.fromarray(pixels).save(path, quality=95, exif=exif.tobytes())
    return path


def _recipe(path: Path, size: int) -> np.ndarray:
    """The README's recipe for an 8-bit file, in plain PIL and numpy: (3, S, S) uint8."""
    image = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    return np.asarray(image.resize((size, size), Image.Resampling.BILINEAR)).transpose(2, 0, 1)


def _pixels(path: Path) -> np.ndarray:
    """The image as a viewer shows it, (H, W, 3) uint8."""
    return np.asarray(shown_rgb(path))


# ------------------------------------------------------------------ full decode, README recipe


def test_detailed_jpeg_decodes_exactly_as_the_readme_recipe(tmp_path):
    path = _jpeg(tmp_path / "detail.jpg", _noise())
    for size in (32, 64, 128):
        want = _recipe(path, size)
        got, shown = decode_rgb(path, size)
        assert shown == (640, 480) and got.dtype == np.uint8 and got.shape == (3, size, size)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(decode_image(str(path), size)[0], want)
    with Image.open(path) as im:  # a reduced-scale JPEG decode gives other pixels
        im.draft("RGB", (64, 64))
        draft = np.asarray(im.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR))
    assert np.abs(draft.transpose(2, 0, 1).astype(int) - _recipe(path, 64)).max() > 2


def test_training_cache_holds_the_recipe(tmp_path):
    paths = [_jpeg(tmp_path / f"{k}.jpg", _noise(120, 90, k)) for k in range(3)]
    cached, sizes = decode_images([str(p) for p in paths], 40, tmp_path / "cache")
    for k, path in enumerate(paths):
        np.testing.assert_array_equal(cached[k].numpy(), _recipe(path, 40))
    assert sizes.tolist() == [[90, 120]] * 3


# ------------------------------------------------------------------ EXIF orientation


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_applied(tmp_path, orientation):
    stored = _noise(40, 60, orientation)
    path = _jpeg(tmp_path / "car.jpg", stored, orientation)
    on_disk = np.asarray(Image.open(path).convert("RGB"))  # the pixels as stored, 60 wide
    upright = np.rot90(on_disk, ROTATE[orientation])
    np.testing.assert_array_equal(_pixels(path), upright)
    shape = upright.shape[1], upright.shape[0]
    assert shown_size(path) == shape
    got, shown = decode_rgb(path, 24)
    assert shown == shape
    want = Image.fromarray(np.ascontiguousarray(upright)).resize((24, 24), Image.BILINEAR)
    np.testing.assert_array_equal(got, np.asarray(want).transpose(2, 0, 1))
    np.testing.assert_array_equal(got, _recipe(path, 24))  # as ImageOps.exif_transpose does


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_agrees_with_pillow(tmp_path, orientation):
    path = _jpeg(tmp_path / "car.jpg", _noise(30, 50, orientation), orientation)
    want = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    np.testing.assert_array_equal(_pixels(path), want)
    assert shown_size(path) == (want.shape[1], want.shape[0])


def test_sizes_for_part_boxes_are_the_shown_sizes(tmp_path):
    from prreid_lib.parts import image_size

    path = _jpeg(tmp_path / "car.jpg", _noise(40, 60), 6)
    assert image_size(path) == (40, 60)
    _, sizes = decode_images([str(path)], 16)
    assert sizes.tolist() == [[40, 60]]


def test_figures_show_the_upright_image(tmp_path):
    from prreid_lib.viz import image_grid

    path = _jpeg(tmp_path / "car.jpg", _noise(40, 60), 8)
    fig = image_grid([str(path)])
    assert fig.axes[0].images[0].get_array().shape == (60, 40, 3)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_a_malformed_exif_block_is_ignored(tmp_path):
    path = tmp_path / "odd.jpg"
    Image.fromarray(_noise(20, 30)).save(path, exif=b"Exif\x00\x00II*\x00\xff\xff\xff\x7f")
    assert shown_size(path) == (30, 20)
    assert decode_rgb(path, 8)[0].shape == (3, 8, 8)


# ------------------------------------------------------------------ modes


def test_16_bit_png_is_scaled_not_white(tmp_path):
    levels = np.arange(256, dtype=np.uint16) * 257  # 0 .. 65535
    gradient = np.tile(levels, (4, 1))
    Image.fromarray(gradient).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode == "I;16"
    got = _pixels(tmp_path / "g16.png")
    np.testing.assert_array_equal(got[0, :, 0], np.arange(256))
    assert (got[..., 0] == got[..., 1]).all() and (got[..., 0] == got[..., 2]).all()
    dark = np.full((4, 8), 4096, np.uint16)  # a dark 16-bit image stays dark
    Image.fromarray(dark).save(tmp_path / "dark.png")
    assert (_pixels(tmp_path / "dark.png") == 16).all()


def test_16_bit_big_endian_and_32_bit_tiff_are_scaled(tmp_path):
    big = np.array([[0, 32896, 65535]], dtype=">u2")
    Image.fromarray(big).save(tmp_path / "big.tif")
    assert Image.open(tmp_path / "big.tif").mode in images._SIXTEEN_BIT
    assert _pixels(tmp_path / "big.tif")[0, :, 0].tolist() == [0, 128, 255]
    wide = np.array([[0, 2**30, 2**31 - 1]], dtype=np.int32)
    Image.fromarray(wide).save(tmp_path / "wide.tif")
    assert Image.open(tmp_path / "wide.tif").mode == "I"
    assert _pixels(tmp_path / "wide.tif")[0, :, 0].tolist() == [0, 128, 255]


def test_float_images_in_unit_range_are_scaled_others_refused(tmp_path):
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32)).save(tmp_path / "unit.tif")
    assert _pixels(tmp_path / "unit.tif")[0, :, 0].tolist() == [0, 128, 255]
    Image.fromarray(np.array([[0.0, 300.0]], np.float32)).save(tmp_path / "hdr.tif")
    with pytest.raises(ImageFileError) as exc:
        decode_rgb(tmp_path / "hdr.tif", 8)
    message = str(exc.value)
    assert message.startswith(f"{tmp_path / 'hdr.tif'}: ") and "\n" not in message
    assert "values from 0 to 300" in message


def test_palette_with_transparency_is_composited_over_white(tmp_path):
    im = Image.new("P", (10, 4), 0)
    im.putpalette([200, 30, 40, 0, 0, 255] + [0] * 762)
    im.paste(1, (0, 0, 5, 4))  # left half: index 1 (blue), transparent
    im.save(tmp_path / "p.png", transparency=1)
    got = _pixels(tmp_path / "p.png")
    assert got[:, :5].reshape(-1, 3).tolist() == [[255, 255, 255]] * 20
    assert got[:, 5:].reshape(-1, 3).tolist() == [[200, 30, 40]] * 20
    plain = tmp_path / "plain.png"
    im.save(plain)  # no transparency: the palette colours
    assert _pixels(plain)[0, 0].tolist() == [0, 0, 255]


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_composited_over_white(tmp_path, mode):
    alpha = np.array([[0, 128, 255]], np.uint8)
    colour = np.full((1, 3, 3), 60, np.uint8) if mode == "RGBA" else np.full((1, 3, 1), 60)
    pixels = np.concatenate([colour.astype(np.uint8), alpha[..., None]], axis=2)
    Image.fromarray(pixels, mode).save(tmp_path / "a.png")
    got = _pixels(tmp_path / "a.png")[0]
    assert got[0].tolist() == [255] * 3 and got[2].tolist() == [60] * 3
    assert abs(int(got[1, 0]) - round((60 * 128 + 255 * 127) / 255)) <= 1


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "red.jpg")
    assert Image.open(tmp_path / "red.jpg").mode == "CMYK"
    r, g, b = (int(v) for v in _pixels(tmp_path / "red.jpg")[8, 8])
    assert r > 240 and g < 15 and b < 15


def test_grey_and_bilevel_become_grey_rgb(tmp_path):
    grey = np.tile(np.arange(0, 256, 32, dtype=np.uint8), (2, 1))
    Image.fromarray(grey).save(tmp_path / "l.png")
    got = _pixels(tmp_path / "l.png")
    np.testing.assert_array_equal(got, np.repeat(grey[..., None], 3, axis=2))
    Image.fromarray(grey > 100).save(tmp_path / "one.png")
    assert Image.open(tmp_path / "one.png").mode == "1"
    want = np.where(grey > 100, 255, 0)
    np.testing.assert_array_equal(_pixels(tmp_path / "one.png")[..., 1], want)


# ------------------------------------------------------------------ the pixel limit


def test_an_image_over_the_limit_is_refused_in_one_line(tmp_path, monkeypatch):
    path = _jpeg(tmp_path / "huge.jpg", _noise(48, 64))
    monkeypatch.setattr(images, "MAX_PIXELS", 1000)
    for call in (lambda: decode_image(str(path), 16), lambda: shown_size(path)):
        with pytest.raises(ValueError) as exc:
            call()
        message = str(exc.value)
        assert message.startswith(f"{path}: ") and "\n" not in message
        assert "64 x 48 = 3,072 pixels" in message and "at most 1,000 pixels" in message
    with pytest.raises(DatasetFormatError):
        decode_images([str(path)], 16, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("pil_limit", [2000, 1000])  # PIL warns over 1x, raises over 2x
def test_pils_own_limit_is_reported_the_same_way(tmp_path, monkeypatch, pil_limit):
    path = _jpeg(tmp_path / "huge.jpg", _noise(48, 64))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", pil_limit)
    before = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ImageFileError) as exc:
            decode_rgb(path, 16)
    message = str(exc.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert f"at most {pil_limit:,} pixels" in message and "3,072 pixels" in message
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    assert warnings.filters == before


def _png_header(path: Path, width: int, height: int) -> Path:
    """A PNG that declares ``width`` x ``height`` but holds a few bytes of pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


@pytest.mark.parametrize(
    ("width", "height", "found"),
    [
        (9000, 9000, "9000 x 9000 = 81,000,000 pixels"),  # over ours, under PIL's warning
        (10000, 10000, "100,000,000 pixels"),  # PIL warns
        (20000, 10000, "200,000,000 pixels"),  # PIL raises DecompressionBombError
    ],
)
def test_huge_images_are_refused_before_decoding(tmp_path, width, height, found):
    path = _png_header(tmp_path / "huge.png", width, height)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning escapes either
        with pytest.raises(ImageFileError) as exc:
            decode_rgb(path, 32)
    message = str(exc.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert found in message and "at most 80,000,000 pixels" in message


# ------------------------------------------------------------------ prreid extract


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("PRREID_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


def test_extract_features_follow_the_documented_preprocessing(tiny_run, tmp_path):
    from prreid_lib.extract import extract_folder
    from prreid_lib.model import extract_features
    from prreid_lib.runs import load_trained

    folder = tmp_path / "crops"
    folder.mkdir()
    upright = _noise(64, 48, 5)
    _jpeg(folder / "a_detail.jpg", _noise())
    Image.fromarray(upright).save(folder / "b_upright.png")
    rotated = np.ascontiguousarray(np.rot90(upright, 1))  # stored lying; EXIF 6 stands it up
    Image.fromarray(rotated).save(folder / "c_rotated.png", exif=_exif(6))
    feats, paths = extract_folder(tiny_run, folder, "cpu", batch_size=2, progress=False)
    model = load_trained(tiny_run)
    size = int(model.input_size)
    pixels = torch.from_numpy(np.stack([_recipe(Path(p), size) for p in paths]))
    want = extract_features(model, pixels).numpy()
    np.testing.assert_allclose(feats, want, atol=1e-5, rtol=0)
    np.testing.assert_allclose(feats[1], feats[2], atol=1e-5, rtol=0)  # rotated = upright


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[images.ORIENTATION_TAG] = orientation
    return exif.tobytes()


def test_cli_extract_refuses_an_image_over_the_limit(tiny_run, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "crops"
    folder.mkdir()
    Image.fromarray(_noise(20, 20)).save(folder / "small.png")
    big = _jpeg(folder / "big.jpg", _noise(60, 80))
    monkeypatch.setattr(images, "MAX_PIXELS", 1000)
    out = tmp_path / "feats.npy"
    code = main(["extract", "--run", str(tiny_run), "--images", str(folder)]
                + ["--out", str(out), "--no-progress", "--device", "cpu"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and "Traceback" not in err and len(err.splitlines()) == 1
    assert str(big) in err and "80 x 60 = 4,800 pixels" in err and "1,000 pixels" in err
    assert not out.exists()


def test_cli_extract_refuses_a_huge_image(tiny_run, tmp_path, capsys):
    folder = tmp_path / "crops"
    folder.mkdir()
    huge = _png_header(folder / "huge.png", 20000, 10000)
    out = tmp_path / "f.npy"
    code = main(["extract", "--run", str(tiny_run), "--images", str(folder)]
                + ["--out", str(out), "--no-progress", "--device", "cpu"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and "Traceback" not in err and len(err.splitlines()) == 1
    assert str(huge) in err and "200,000,000 pixels" in err and "80,000,000" in err


def test_export_metadata_names_the_decoder(tiny_run):
    from prreid_lib.export import export_metadata
    from prreid_lib.runs import load_trained

    meta = export_metadata(load_trained(tiny_run))
    assert "Image.Resampling.BILINEAR" in meta["resize"]
    assert "EXIF" in meta["decode"] and "no JPEG draft" in meta["decode"]
