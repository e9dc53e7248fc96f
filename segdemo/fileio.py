"""Crash-safe file writing and image reading shared by the store, the trainer and the CLI.

Every file segdemo writes goes to a temporary name in the target's directory, is fsynced and then
renamed over the target, so a reader sees the old file or the new one, never half of one. The writer holds an
exclusive ``flock`` on its temporary file until the rename; the kernel drops it when the process dies, so
:func:`sweep_stale_temp_files` can tell a write in progress from one left by a killed process.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import time
import tempfile
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_IMAGE_PIXELS = 40_000_000
"""Largest image accepted (pixels). Bigger files are refused before decoding (decompression-bomb guard)."""

TEMP_SUFFIX = ".tmp"
TEMP_GRACE_SECONDS = 5.0
"""A temp file younger than this is never swept, locked or not."""

Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
_UMASK = os.umask(0o022)
os.umask(_UMASK)
DIR_MODE = 0o777 & ~_UMASK
"""Permissions of a folder made the ordinary way (mkdir under the process's umask)."""


class ImageError(ValueError):
    """An input that is not a usable image; the message is meant for the user."""


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same directory, fsync, rename).

    The temp file stays flock-ed from creation until after the rename, so a sweep never takes it for abandoned.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:80]}.", suffix=TEMP_SUFFIX)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.fchmod(fd, 0o666 & ~_UMASK)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)
    _fsync_dir(path.parent)


def sweep_stale_temp_files(root: Path, *, min_age: float = TEMP_GRACE_SECONDS) -> list[Path]:
    """Delete the temporary files under ``root`` that no live writer holds; return the deleted paths.

    A temp file is left behind only by a writer killed between creating and renaming it. A live writer holds an
    exclusive flock on it, so a file whose lock can be taken is abandoned. Files younger than ``min_age`` seconds
    are skipped (a writer creates the file a moment before it locks it).
    """
    removed = []
    for path in Path(root).rglob(f".*{TEMP_SUFFIX}"):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue  # renamed or removed meanwhile, or a link
        try:
            if time.time() - os.fstat(fd).st_mtime < min_age:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a live writer holds it
            try:
                still_there = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                still_there = False
            if still_there:
                path.unlink(missing_ok=True)
                removed.append(path)
        finally:
            os.close(fd)
    return removed


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_image(path: Path, image: Image.Image) -> None:
    """Save a Pillow image as PNG atomically."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def open_image(source: str | Path | bytes | Image.Image) -> Image.Image:
    """Open and fully decode an image, honouring EXIF orientation; raise ImageError with a clear message."""
    if isinstance(source, Image.Image):
        image = source
    else:
        if isinstance(source, (str, Path)) and not Path(source).is_file():
            raise ImageError(f"no such file: {source}")
        handle = io.BytesIO(source) if isinstance(source, bytes) else source
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(handle)
                image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageError(f"image too large: the limit is {MAX_IMAGE_PIXELS:,} pixels") from None
        except UnidentifiedImageError:
            raise ImageError("not an image file (supported: PNG, JPEG, WebP, BMP, TIFF)") from None
        except (OSError, SyntaxError, ValueError) as err:
            raise ImageError(f"the image could not be decoded (truncated or damaged file?): {err}") from None
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageError(f"image too large ({width}x{height}): the limit is {MAX_IMAGE_PIXELS:,} pixels")
    try:
        return ImageOps.exif_transpose(image)
    except Exception:
        return image


def to_rgb_array(image: Image.Image) -> np.ndarray:
    """Any Pillow mode (RGB, RGBA, L, LA, P, I;16, I, F, CMYK, ...) → RGB uint8 array (H, W, 3)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        low, high = np.percentile(values, [0.0, 100.0]) if values.size else (0.0, 1.0)
        scaled = (values - low) / max(high - low, 1e-9) * 255.0
        gray = np.clip(scaled + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.array(Image.alpha_composite(background, rgba).convert("RGB"))
    return np.array(image.convert("RGB"))


def read_rgb(source: str | Path | bytes | Image.Image) -> np.ndarray:
    """An image file, bytes or Pillow image → RGB uint8 (H, W, 3), upright as the user sees it."""
    return to_rgb_array(open_image(source))
