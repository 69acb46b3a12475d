"""Training on the user's data: the datasets edgenas reads, and the loop that trains a generated network.

`load_dataset` reads an image folder (one sub-folder per class), a `.npz` with `x` and `y` arrays, or a folder
in CIFAR-10/100's python batch format, into float32 NCHW images (8-bit images scaled to [0, 1]) and integer
labels. `train` splits off a validation set (seeded, per class), trains with SGD and a cosine schedule, stops
early when validation accuracy stops improving and keeps the best epoch's weights. The network it returns
standardises its input with the training set's per-channel mean and std as its first layer, so the deployed
model takes inputs exactly as the dataset holds them.
"""
from __future__ import annotations

import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from .errors import EdgenasError
from .tune import progress_bar

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True)
class Dataset:
    x: np.ndarray  # float32, N x C x H x W
    y: np.ndarray  # int64 class indices
    classes: tuple[str, ...]
    source: str  # what was read, for the report
    test: tuple[np.ndarray, np.ndarray] | None = None  # a held-out split the format itself provides

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.x.shape[1:])


@dataclass(frozen=True)
class TrainResult:
    model: nn.Module  # the trained network, standardising its input, in eval mode
    val_accuracy: float  # percent, best epoch
    test_accuracy: float | None  # percent, on the format's own test split where it has one
    best_epoch: int
    epochs_run: int
    samples: dict[str, int]
    seconds: float

    def as_dict(self) -> dict:
        return {"val_accuracy": round(self.val_accuracy, 3), "test_accuracy": None if self.test_accuracy is None
                else round(self.test_accuracy, 3), "best_epoch": self.best_epoch, "epochs_run": self.epochs_run,
                "samples": self.samples, "seconds": round(self.seconds, 2)}


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


def train(build: Callable[[], nn.Module], data: Dataset, epochs: int = 30, seed: int = 0, val_fraction: float = 0.2,
          patience: int = 5, batch_size: int = 64, lr: float = 0.05, threads: int | None = None,
          log: Callable[[str], None] = lambda _: None) -> TrainResult:
    """Train the network `build()` returns on `data` and return it with its validation accuracy."""
    if epochs < 1:
        raise EdgenasError(f"epochs must be at least 1, got {epochs}")
    start = time.perf_counter()
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    train_idx, val_idx = split(data.y, val_fraction, seed)
    xt, yt = torch.from_numpy(data.x[train_idx]), torch.from_numpy(data.y[train_idx])
    xv, yv = torch.from_numpy(data.x[val_idx]), torch.from_numpy(data.y[val_idx])
    mean = xt.mean(dim=(0, 2, 3))
    std = xt.std(dim=(0, 2, 3)).clamp_min(1e-6)
    model = nn.Sequential(Standardize(mean, std), build())
    steps = epochs * max(1, -(-len(xt) // batch_size))
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    shuffle = torch.Generator().manual_seed(seed)
    best, best_epoch, best_state, epoch = -1.0, 0, None, 0
    for epoch in range(1, epochs + 1):
        model.train()
        total = 0.0
        for batch in torch.randperm(len(xt), generator=shuffle).split(batch_size):
            loss = nn.functional.cross_entropy(model(xt[batch]), yt[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
            total += loss.item() * len(batch)
        val = accuracy(model, xv, yv)
        if val > best:
            best, best_epoch = val, epoch
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        log(f"{progress_bar(epoch, epochs)} epochs  loss {total / len(xt):.4f}  val {val:.2f}% "
            f"(best {best:.2f}%, epoch {best_epoch})  {time.perf_counter() - start:.0f} s")
        if epoch - best_epoch >= patience:
            log(f"early stop: no better validation accuracy for {patience} epochs")
            break
    model.load_state_dict(best_state)
    model.eval()
    test = None
    if data.test is not None:
        test = accuracy(model, torch.from_numpy(data.test[0]), torch.from_numpy(data.test[1]))
    samples = {"train": len(xt), "val": len(xv), **({"test": len(data.test[1])} if data.test is not None else {})}
    return TrainResult(model, best, test, best_epoch, epoch, samples, time.perf_counter() - start)


def split(y: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation indices: `val_fraction` of each class (at least one sample), chosen with `seed`."""
    if not 0 < val_fraction < 1:
        raise EdgenasError(f"the validation fraction must be between 0 and 1, got {val_fraction}")
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        val.extend(members[:max(1, int(round(val_fraction * len(members))))])
    val = np.sort(np.asarray(val, dtype=np.int64))
    return np.setdiff1d(np.arange(len(y)), val), val


def accuracy(model, x, y, batch_size: int = 512) -> float:
    """Top-1 accuracy of `model` on (x, y), in percent."""
    model.eval()
    with torch.no_grad():
        right = sum(int((model(xb).argmax(1) == yb).sum()) for xb, yb in zip(x.split(batch_size), y.split(batch_size)))
    return 100.0 * right / max(1, len(y))


class Standardize(nn.Module):
    """(x - mean) / std per channel, with the training set's statistics as buffers."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean.reshape(1, -1, 1, 1).clone())
        self.register_buffer("std", std.reshape(1, -1, 1, 1).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


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
    return Dataset(_to_nchw(x, path), *_labels(y, path), source=f"npz {path}")


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
    return Dataset(x, y, classes, f"{'cifar10' if cifar10 else 'cifar100'} {path}", test)


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
    return Dataset(_to_nchw(x, path), np.array([c for _, c in files], dtype=np.int64),
                   tuple(d.name for d in folders), source)


def _to_nchw(x: np.ndarray, path: Path) -> np.ndarray:
    """Images as float32 N x C x H x W: N x H x W gets one channel, N x H x W x C (C of 1, 3 or 4) is
    transposed; 8-bit integers are scaled to [0, 1]."""
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    if not np.issubdtype(x.dtype, np.number):
        raise EdgenasError(f"{path}: x has dtype {x.dtype}; images must be numbers")
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[1] not in (1, 3, 4) and x.shape[3] in (1, 3, 4):
        x = x.transpose(0, 3, 1, 2)
    elif x.ndim != 4:
        raise EdgenasError(f"{path}: x has shape {x.shape}; images must be N x H x W, N x C x H x W or N x H x W x C")
    return np.ascontiguousarray(x)


def _labels(y: np.ndarray, path: Path) -> tuple[np.ndarray, tuple[str, ...]]:
    """Integer class indices 0..K-1 for `y` (any labels), and the class names in that order."""
    if y.ndim != 1:
        raise EdgenasError(f"{path}: y has shape {y.shape}; labels must be one per sample (shape N)")
    classes, index = np.unique(y, return_inverse=True)
    return index.astype(np.int64), tuple(str(c) for c in classes)


def _check(d: Dataset) -> Dataset:
    n, (_, h, w) = len(d.x), d.image_shape
    if n != len(d.y):
        raise EdgenasError(f"{d.source}: {n} images but {len(d.y)} labels; give one label per image")
    if len(np.unique(d.y)) < 2:
        raise EdgenasError(f"{d.source}: only one class; a classifier needs at least two")
    if h != w:
        raise EdgenasError(f"{d.source}: images are {h}x{w}; the search space takes square images, resize them")
    if not np.isfinite(d.x).all():
        raise EdgenasError(f"{d.source}: x holds NaN or infinite values; clean the data first")
    counts = np.bincount(d.y)
    if counts.min() < 2:
        raise EdgenasError(f"{d.source}: class '{d.classes[int(counts.argmin())]}' has {counts.min()} sample; each "
                           f"class needs at least 2 (one for training, one for validation)")
    return d
