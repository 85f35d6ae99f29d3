"""Image files as a viewer shows them: the one decoder of every image the model sees.

:func:`decode_rgb` is what training and evaluation (through
``prreid_lib.pipeline.imageset.decode_images``), ``prreid extract`` and
the class activation maps feed the model, and what the README and the
metadata of an exported model document. For a file and a size S it

1. refuses a file that is not an image (by its first bytes) and one of more
   than :data:`MAX_PIXELS` pixels (from the header, before any pixel is decoded);
2. decodes the whole image at full resolution (never JPEG's reduced-scale
   "draft" decoding);
3. applies the EXIF orientation as ``PIL.ImageOps.exif_transpose`` does,
   so the image stands as a viewer shows it (a malformed EXIF block is ignored);
4. makes it 8-bit RGB (:func:`to_rgb`): 16-bit and 32-bit integer images are
   scaled by their bit depth (65535 -> 255), float images in [0, 1] times 255;
   transparent images (RGBA, LA, PA, palette or grey with a transparent colour)
   are composited over :data:`BACKGROUND` (white); every other mode (L, 1, P,
   CMYK, YCbCr, ...) through PIL's ``convert("RGB")``; embedded colour
   profiles are not applied;
5. resizes it to S x S with ``Image.resize((S, S), Image.Resampling.BILINEAR)``:
   Pillow's bilinear filter, which averages over the whole footprint when it
   shrinks (unlike OpenCV's or torch's bilinear interpolation).

:func:`shown_size` gives the (width, height) after step 3, which part boxes and
annotations are measured in; :func:`shown_rgb` the full image after step 4
(for figures). Problems raise :class:`ImageFileError` (a ``ValueError``), one
line naming the file.
"""

from __future__ import annotations

import re
import struct
import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

MAX_PIXELS = 80_000_000
"""Largest image decoded (width x height): 80 megapixels, 240 MB as 8-bit RGB.

Below PIL's own decompression-bomb threshold (about 89.5 megapixels), so this
is the one limit a user meets.
"""
BACKGROUND = (255, 255, 255)
"""Colour transparent pixels are composited over (white, as a page shows them)."""
ORIENTATION_TAG = 0x0112
"""The EXIF tag of the orientation (1 upright; 5 to 8 swap width and height)."""

_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"GIF8", b"II*\x00", b"MM\x00*")
_OPEN_LOCK = threading.Lock()
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
_TRANSPARENT = ("RGBA", "LA", "PA", "RGBa", "La")
_BROKEN = (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error)
"""What PIL raises for a file it cannot decode."""

__all__ = [
    "BACKGROUND",
    "MAX_PIXELS",
    "ImageFileError",
    "UndecodableImageError",
    "decode_rgb",
    "has_image_signature",
    "open_image",
    "shown_rgb",
    "shown_size",
    "to_rgb",
]


class ImageFileError(ValueError):
    """An image file prreid will not decode: ``path``, ``expected``, ``found``, ``fix``.

    The message reads "PATH: expected ...; found .... Fix: ..." on one line.
    """

    def __init__(self, path: str | Path, expected: str, found: str, fix: str) -> None:
        self.path, self.expected, self.found, self.fix = Path(path), expected, found, fix
        super().__init__(f"{self.path}: expected {expected}; found {found}. Fix: {fix}")

    def __reduce__(self):  # picklable across worker processes
        return (type(self), (self.path, self.expected, self.found, self.fix))


class UndecodableImageError(ImageFileError):
    """The file is not an image, or its data is cut short or corrupt."""


def has_image_signature(path: str | Path) -> bool:
    """Whether the file starts like an image PIL decodes without plugins.

    Checked before ``Image.open``, so a text or empty file never reaches a
    plugin loader that another library may have hooked into PIL (ultralytics
    retries unidentified files through an optional HEIF package).
    """
    with open(path, "rb") as handle:
        head = handle.read(12)
    return head.startswith(_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def _undecodable(path: str | Path, err: BaseException) -> UndecodableImageError:
    text = str(err).strip()
    reason = text.splitlines()[0] if text else type(err).__name__
    return UndecodableImageError(
        path,
        "an image file (JPEG or PNG) that decodes completely",
        reason[:160],
        "regenerate the image or remove it from the list",
    )


def _limit() -> int:
    """The pixel limit in force: :data:`MAX_PIXELS`, or PIL's when a user set it lower."""
    pil = Image.MAX_IMAGE_PIXELS
    return min(MAX_PIXELS, int(pil)) if pil else MAX_PIXELS


def _too_large(path: str | Path, found: str) -> ImageFileError:
    return ImageFileError(
        path,
        f"an image of at most {_limit():,} pixels",
        found,
        "crop or shrink the image below the limit",
    )


def open_image(path: str | Path) -> Image.Image:
    """The image at ``path`` opened lazily (header read, no pixel decoded yet).

    A file that is not an image raises :class:`UndecodableImageError`; one of
    more than :data:`MAX_PIXELS` pixels :class:`ImageFileError` with its size
    and the limit. A missing file raises ``FileNotFoundError``.
    """
    try:
        signed = has_image_signature(path)
    except FileNotFoundError:
        raise
    except OSError as err:  # a folder, a file without read permission
        raise _undecodable(path, err) from None
    if not signed:
        raise _undecodable(
            path, ValueError("not an image file (no JPEG, PNG, BMP, GIF, WebP or TIFF signature)")
        )
    # PIL warns (or raises) on very large images while opening; turn the warning
    # into an error for this call only (the lock keeps threads from racing on
    # the warning filters).
    with _OPEN_LOCK, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            pixels = re.search(r"\((\d+) pixels\)", str(err))
            found = f"{int(pixels[1]):,} pixels" if pixels else "an image over PIL's limit"
            raise _too_large(path, found) from None
        except FileNotFoundError:
            raise
        except _BROKEN as err:
            raise _undecodable(path, err) from None
    w, h = im.size
    if w * h > _limit():
        im.close()
        raise _too_large(path, f"{w} x {h} = {w * h:,} pixels")
    return im


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation (1..8) of an open image; 1 when it has none or it is unreadable.

    A malformed EXIF block is ignored, as viewers ignore it.
    """
    try:
        value = im.getexif().get(ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001 - any EXIF parse failure means "no orientation"
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
"""EXIF orientation -> the transposition that stands the image upright (as ImageOps does)."""


def shown_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of the image as a viewer shows it (after its EXIF orientation)."""
    try:
        with open_image(path) as im:
            w, h = im.size
            return (h, w) if _orientation(im) >= 5 else (w, h)
    except (ImageFileError, FileNotFoundError):
        raise
    except _BROKEN as err:
        raise _undecodable(path, err) from None


def _bit_depth(im: Image.Image, values: np.ndarray) -> tuple[int, bool]:
    """Bits per sample and signedness of an integer image (mode ``I``).

    From the TIFF tags when the file has them, else 16 bits (32 when a value
    exceeds 65535).
    """
    tags = getattr(im, "tag_v2", None)
    if tags is not None and 258 in tags:
        bits, kind = tags[258], tags.get(339, 1)
        bits = bits[0] if isinstance(bits, tuple) else bits
        kind = kind[0] if isinstance(kind, tuple) else kind
        return int(bits), kind == 2
    return (16 if values.size == 0 or values.max() <= 65535 else 32), False


def _scaled(values: np.ndarray, top: float) -> Image.Image:
    """Grey values in [0, top] as an 8-bit grey image (rounded to the nearest level)."""
    out = np.rint(np.clip(values.astype(np.float64), 0.0, top) * (255.0 / top))
    return Image.fromarray(out.astype(np.uint8), "L")


def to_rgb(im: Image.Image, path: str | Path = "image") -> Image.Image:
    """Any PIL image as 8-bit RGB, as a viewer shows it (see the module's step 4).

    A float image with values outside [0, 1] (or not finite), and a mode PIL
    cannot convert, raise :class:`ImageFileError`.
    """
    mode = im.mode
    if mode == "RGB":
        return im
    if mode in _SIXTEEN_BIT:
        return _scaled(np.asarray(im), 65535.0).convert("RGB")
    if mode == "I":
        values = np.asarray(im)
        bits, signed = _bit_depth(im, values)
        return _scaled(values, float(2 ** (bits - 1 if signed else bits) - 1)).convert("RGB")
    if mode == "F":
        values = np.asarray(im)
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        if not np.isfinite(values).all() or low < 0.0 or high > 1.0:
            raise ImageFileError(
                path,
                "a floating-point image with values in [0, 1]",
                f"values from {low:g} to {high:g}",
                "save the image as 8- or 16-bit integers",
            )
        return _scaled(values, 1.0).convert("RGB")
    if mode in _TRANSPARENT or "transparency" in im.info:
        rgba = im.convert("RGBA")
        ground = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
        return Image.alpha_composite(ground, rgba).convert("RGB")
    try:
        return im.convert("RGB")
    except ValueError as err:
        raise ImageFileError(
            path, "an RGB, grey, palette or CMYK image", f"mode {mode} ({err})", "save it as RGB"
        ) from None


def shown_rgb(path: str | Path) -> Image.Image:
    """The whole image as 8-bit RGB, as a viewer shows it (orientation applied)."""
    try:
        with open_image(path) as im:
            im.load()  # the full image: never a reduced-scale JPEG draft
            method = _TRANSPOSE.get(_orientation(im))
            upright = im.transpose(method) if method is not None else im
            rgb = to_rgb(upright, path)
            return rgb.copy() if rgb is im else rgb
    except (ImageFileError, FileNotFoundError):
        raise
    except _BROKEN as err:
        raise _undecodable(path, err) from None


def decode_rgb(path: str | Path, size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """One image -> (3, size, size) uint8 (the module's recipe) and its shown (width, height).

    Raises :class:`ImageFileError` (:class:`UndecodableImageError` for a file
    that is not an image or is cut short) naming the file.
    """
    rgb = shown_rgb(path)
    resized = rgb.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8).transpose(2, 0, 1), rgb.size
