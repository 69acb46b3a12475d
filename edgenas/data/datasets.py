"""The datasets edgenas trains on: `load_dataset` reads an image folder (one sub-folder per class), a `.npz` with
`x` and `y` arrays, or a folder in CIFAR-10/100's python batch format, into float32 NCHW images (8-bit images
scaled to [0, 1]) and integer labels, each problem one line naming the file and the fix. What it did to the
stored data is kept (`Dataset.preprocessing`), so that a deployed model can be given data as it is stored.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import EdgenasError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True)
class Dataset:
    x: np.ndarray  # float32, N x C x H x W
    y: np.ndarray  # int64 class indices
    classes: tuple[str, ...]
    source: str  # what was read, for the report
    test: tuple[np.ndarray, np.ndarray] | None = None  # a held-out split the format itself provides
    # how the stored data became x: {"dtype": stored dtype, "layout": NCHW | NHWC | NHW, "scale": multiplier,
    # "description": in words}; `preprocess` applies it to more data stored the same way
    preprocessing: dict = field(default_factory=lambda: preprocessing("float32", "NCHW", 1.0))

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.x.shape[1:])


def preprocessing(dtype: str, layout: str, scale: float, extra: str = "") -> dict:
    """The record of what was done to stored data of `dtype` in `layout`: multiplied by `scale`, made NCHW."""
    steps = [f"{dtype} data in {layout}"] + ([f"times {scale:.6g} (1/255)" if scale == 1 / 255 else
                                             f"times {scale:.6g}"] if scale != 1.0 else [])
    steps += {"NHWC": ["transposed to NCHW"], "NHW": ["given one channel (N x 1 x H x W)"]}.get(layout, [])
    return {"dtype": dtype, "layout": layout, "scale": scale,
            "description": ", ".join(([extra] if extra else []) + steps) + ", as float32"}


def preprocess(raw: np.ndarray, record: dict) -> np.ndarray:
    """Data stored as the training data was (`record`, a `Dataset.preprocessing`) made into the network's input:
    float32, scaled, NCHW."""
    x = np.asarray(raw).astype(np.float32) * np.float32(record["scale"])
    if record["layout"] == "NHWC":
        x = x.transpose(0, 3, 1, 2)
    elif record["layout"] == "NHW":
        x = x[:, None]
    return np.ascontiguousarray(x)


def load_dataset(path: str | Path) -> Dataset:
    """The dataset at `path`: a `.npz` file, a CIFAR python batch folder, or an image folder."""
    path = Path(path)
    if not path.exists():
        raise EdgenasError(f"data path {path} does not exist; pass an image folder, a .npz file or a CIFAR folder")
    if path.is_file():
        if path.suffix != ".npz":
            raise EdgenasError(f"data file {path} is not a .npz; pass a .npz with x and y, an image folder (one "
                               f"sub-folder per class) or a CIFAR python batch folder")
        return _check(_load_npz(path))
    if (path / "data_batch_1").exists() or (path / "train").is_file():
        return _check(_load_cifar(path))
    return _check(_load_image_folder(path))


# --- formats ------------------------------------------------------------------------------------------------
def _load_npz(path: Path) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = {"x", "y"} - set(f.files)
            if missing:
                raise EdgenasError(f"{path} has no array {' or '.join(sorted(missing))} (it holds {', '.join(f.files)})"
                                   f"; save the images as x and the labels as y")
            x, y = f["x"], f["y"]
    except (OSError, ValueError) as e:
        raise EdgenasError(f"cannot read {path} as .npz ({e}); save it with numpy.savez(path, x=..., y=...)") from None
    images, record = _to_nchw(x, path)
    return Dataset(images, *_labels(y, path), source=f"npz {path}", preprocessing=record)


def _load_cifar(path: Path) -> Dataset:
    """CIFAR-10 (data_batch_1..5, test_batch, batches.meta) or CIFAR-100 (train, test, meta; fine labels)."""
    cifar10 = (path / "data_batch_1").exists()
    names = sorted(path.glob("data_batch_*")) if cifar10 else [path / "train"]
    key = b"labels" if cifar10 else b"fine_labels"

    def read(files: list[Path]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for f in files:
            try:
                with open(f, "rb") as fh:
                    d = pickle.load(fh, encoding="bytes")
                xs.append(np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
                ys.append(np.asarray(d[key], dtype=np.int64))
            except (OSError, pickle.UnpicklingError, KeyError, ValueError, EOFError) as e:
                raise EdgenasError(f"{f} is not a CIFAR python batch ({type(e).__name__}: {e}); pass the folder "
                                   f"extracted from cifar-10-python.tar.gz or cifar-100-python.tar.gz") from None
        return np.concatenate(xs).astype(np.float32) / 255.0, np.concatenate(ys)

    x, y = read(names)
    test_file = path / ("test_batch" if cifar10 else "test")
    test = read([test_file]) if test_file.exists() else None
    meta = path / ("batches.meta" if cifar10 else "meta")
    classes = tuple(str(c) for c in range(int(y.max()) + 1))
    if meta.exists():
        with open(meta, "rb") as fh:
            d = pickle.load(fh, encoding="bytes")
        classes = tuple(n.decode() for n in d[b"label_names" if cifar10 else b"fine_label_names"])
    return Dataset(x, y, classes, f"{'cifar10' if cifar10 else 'cifar100'} {path}", test,
                   preprocessing("uint8", "NCHW", 1 / 255, "CIFAR python batch rows reshaped to N x 3 x 32 x 32"))


def _load_image_folder(path: Path) -> Dataset:
    from PIL import Image, UnidentifiedImageError

    folders = sorted(p for p in path.iterdir() if p.is_dir())
    if len(folders) < 2:
        raise EdgenasError(f"{path} is not an image folder with one sub-folder per class (found {len(folders)} "
                           f"sub-folders); make one folder per class, or pass a .npz")
    files = [(f, c) for c, d in enumerate(folders) for f in sorted(d.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise EdgenasError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in the class folders of {path}")
    images = []
    for f, _ in files:
        try:
            with Image.open(f) as im:
                images.append(im.copy())
        except (OSError, UnidentifiedImageError) as e:
            raise EdgenasError(f"cannot read image {f} ({e}); remove or fix it") from None
    mode = "L" if all(im.mode in ("L", "1", "I;16") for im in images) else "RGB"
    size = images[0].size
    x = np.stack([np.asarray(im.convert(mode).resize(size), dtype=np.float32) / 255.0 for im in images])
    resized = sum(im.size != size for im in images)
    source = f"image folder {path}" + (f" ({resized} images resized to {size[0]}x{size[1]})" if resized else "")
    images, _ = _to_nchw(x, path)
    decoded = f"image files decoded as {mode}, resized to {size[0]}x{size[1]}, uint8 pixels"
    return Dataset(images, np.array([c for _, c in files], dtype=np.int64), tuple(d.name for d in folders), source,
                   preprocessing=preprocessing("uint8", "NHWC", 1 / 255, decoded) | {"image_mode": mode})


def _to_nchw(x: np.ndarray, path: Path) -> tuple[np.ndarray, dict]:
    """Images as float32 N x C x H x W, and the record of how: N x H x W gets one channel, N x H x W x C (C of 1, 3
    or 4) is transposed; 8-bit integers are scaled to [0, 1]."""
    if not np.issubdtype(x.dtype, np.number):
        raise EdgenasError(f"{path}: x has dtype {x.dtype}; images must be numbers")
    if x.ndim == 3:
        layout = "NHW"
    elif x.ndim == 4 and x.shape[1] not in (1, 3, 4) and x.shape[3] in (1, 3, 4):
        layout = "NHWC"
    elif x.ndim == 4:
        layout = "NCHW"
    else:
        raise EdgenasError(f"{path}: x has shape {x.shape}; images must be N x H x W, N x C x H x W or N x H x W x C")
    record = preprocessing(x.dtype.name, layout, 1 / 255 if x.dtype == np.uint8 else 1.0)
    return preprocess(x, record), record


def _labels(y: np.ndarray, path: Path) -> tuple[np.ndarray, tuple[str, ...]]:
    """Integer class indices 0..K-1 for `y` (any labels), and the class names in that order."""
    if y.ndim != 1:
        raise EdgenasError(f"{path}: y has shape {y.shape}; labels must be one per sample (shape N)")
    classes, index = np.unique(y, return_inverse=True)
    return index.astype(np.int64), tuple(str(c) for c in classes)


def _check(d: Dataset) -> Dataset:
    n = len(d.x)
    if n != len(d.y):
        raise EdgenasError(f"{d.source}: {n} images but {len(d.y)} labels; give one label per image")
    if len(np.unique(d.y)) < 2:
        raise EdgenasError(f"{d.source}: only one class; a classifier needs at least two")
    if not np.isfinite(d.x).all():
        raise EdgenasError(f"{d.source}: x holds NaN or infinite values; clean the data first")
    counts = np.bincount(d.y)
    if counts.min() < 2:
        raise EdgenasError(f"{d.source}: class '{d.classes[int(counts.argmin())]}' has {counts.min()} sample; each "
                           f"class needs at least 2 (one for training, one for validation)")
    return d
