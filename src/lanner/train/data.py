"""Training data: datasets on disk → torch ``Dataset`` s with augmentation, and a rank-aware batch sampler.

* ``read_training_set`` reads a dataset (``lanner.data.io``) and refuses an empty one, inverted boxes,
  or an unreadable ImageFolder image;
  ``detection_items`` maps its class names onto the spec's class list (a dataset class the spec lacks
  is a ``DataError``).
* ``DetectionTrainSet`` decodes an image (or takes it from a RAM cache), optionally pastes objects from
  other images into it (``copy_paste.py``, into each mosaic tile too), optionally builds a mosaic,
  augments it (``augment.py``) and letterboxes it with ``lanner.data.preprocess.to_network_pixels``.
  Images leave the workers as uint8 NCHW (a quarter of float32's bytes through shared memory, pinning
  and the host-to-device copy); ``normalise_pixels`` applies mean/std on the device, with the same
  float32 operations as ``to_network_input`` (the one preprocessing of lanner), so the same bits.
  Targets are ``(n, 5)`` rows ``[class, x1, y1, x2, y2]`` in network-input pixels.
* ``ClassificationTrainSet`` does the same for ImageFolder sets (flip + colour).
* ``GlobalBatchSampler`` draws one permutation per (seed, epoch) and hands rank ``r`` its slice of
  every global batch, so N processes with batch B see exactly what one process with batch N*B sees.

Every random choice is seeded by ``(seed, epoch, index)``: same spec, same batches.

Example:
    >>> sampler = GlobalBatchSampler(10, batch_size=2, seed=0, world_size=2, rank=1)
    >>> len(list(sampler))
    2
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from lanner.core.errors import DataError
from lanner.data.dataset import (
    IGNORE_CLASS,
    ClassificationDataset,
    DetectionDataset,
    clip_to_image,
    crowd_class,
    ignored_boxes,
)
from lanner.data.formats.layout import Parsed, image_size
from lanner.data.images import read_image
from lanner.data.io import detect_format, parse_dataset, read_any
from lanner.data.preprocess import InputSpec, to_network_pixels
from lanner.data.validate import check_boxes
from lanner.models.registry import ModelInfo
from lanner.train.augment import Augment, mosaic
from lanner.train.copy_paste import CopyPaste

_ORDER_STREAM = 2**31 - 1  # the seed stream of the sample order (item indices use 0..n-1)


@dataclass(frozen=True)
class Item:
    """One training image: its path and labels in the spec's class ids (boxes empty for classification)."""

    image_path: Path
    xyxy: np.ndarray
    class_id: np.ndarray


def input_spec(info: ModelInfo) -> InputSpec:
    """The ``InputSpec`` a model's metadata describes."""
    return InputSpec(
        size_hw=tuple(info.input_size),  # type: ignore[arg-type]
        resize=info.resize,
        color_order=info.color_order,
        mean=tuple(info.mean),  # type: ignore[arg-type]
        std=tuple(info.std),  # type: ignore[arg-type]
        pad_value=info.pad_value,
    )


def read_training_set(path: Path, fmt: str = "auto") -> DetectionDataset | ClassificationDataset:
    """Read a dataset for training; an empty one, or one with an inverted or zero-size box, is a ``DataError``.

    Reading alone accepts such boxes (``lanner dataset convert`` keeps them as they are), but a model
    trained on them learns nonsense, so training refuses them with the label file and line.
    """
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "imagefolder":
        dataset: DetectionDataset | ClassificationDataset = read_any(path, "imagefolder")
        _refuse_unreadable_images(dataset, path)  # detection readers check every header already
    else:
        parsed = parse_dataset(path, fmt)
        dataset = parsed.to_dataset()  # label and image errors first, as every reader reports them
        _refuse_invalid_boxes(parsed, path)
    if len(dataset) == 0:
        raise DataError("the dataset has no images", where=str(path), fix="check the path and the images/ folder")
    return dataset


def _refuse_unreadable_images(dataset: ClassificationDataset, path: Path) -> None:
    """A ``DataError`` naming the first image whose header cannot be read (0 bytes, not an image), before epoch 1."""
    bad = [s.image_path for s in dataset.samples if image_size(s.image_path) is None]
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise DataError(
            f"corrupt_image: cannot read the image header (not an image, or truncated){more}",
            where=str(bad[0]),
            fix=f"replace or delete it (`lanner dataset validate {path}` lists them all)",
        )


def _refuse_invalid_boxes(parsed: Parsed, path: Path) -> None:
    """A ``DataError`` naming the first inverted or zero-size box (``validate``'s ``invalid_box``) and the count."""
    bad = [
        problem
        for sample in parsed.samples
        for problem in check_boxes(sample, parsed.origins.get(sample.image_id, []))
        if problem.kind == "invalid_box"
    ]
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise DataError(
            f"invalid_box: {bad[0].message}{more}",
            where=bad[0].location(),
            fix=f"fix or delete those labels (`lanner dataset validate {parsed.source or path}` lists them)",
        )


def class_mapping(dataset_classes: Sequence[str], spec_classes: Sequence[str], where: str) -> np.ndarray:
    """Index array: dataset class id → spec class id. Raises when the spec lacks a dataset class."""
    missing = [c for c in dataset_classes if c not in spec_classes]
    if missing:
        raise DataError(
            f"dataset classes {missing} are not in the spec's classes {list(spec_classes)}",
            where=where,
            fix="add them to dataset.classes (or remove those labels from the dataset)",
        )
    return np.asarray([list(spec_classes).index(c) for c in dataset_classes], np.int64).reshape(-1)


def detection_items(dataset: DetectionDataset, spec_classes: Sequence[str], where: str) -> list[Item]:
    """The dataset's samples as ``Item`` s with class ids in the spec's order.

    Ignore regions come last, clipped to the image: COCO crowd boxes with ``crowd_class`` of their class, KITTI
    ``DontCare`` regions with ``IGNORE_CLASS``. They travel through augmentation like boxes; the loss does not
    call a detection inside one a false positive, and validation scores them as pycocotools and KITTI do.
    """
    mapping = class_mapping(dataset.classes, spec_classes, where)
    items = []
    for s in dataset.samples:
        ignore = ignored_boxes(s.boxes)
        dontcare = np.asarray(s.ignore_regions, np.float32).reshape(-1, 4)
        regions = np.concatenate([s.boxes.xyxy[ignore], dontcare])
        region_ids = np.concatenate(
            [crowd_class(mapping[s.boxes.class_id[ignore]]), np.full(len(dontcare), IGNORE_CLASS)]
        )
        regions, kept = clip_to_image(regions, s.width, s.height)  # past the edge, mosaic spreads a region
        ids = np.concatenate([mapping[s.boxes.class_id[~ignore]], region_ids[kept]])
        xyxy = np.concatenate([s.boxes.xyxy[~ignore], regions[kept]]).astype(np.float32)
        items.append(Item(Path(s.image_path), xyxy, ids.astype(np.int64)))
    return items


def classification_items(dataset: ClassificationDataset, spec_classes: Sequence[str], where: str) -> list[Item]:
    """ImageFolder samples as ``Item`` s (``class_id`` of shape (1,))."""
    mapping = class_mapping(dataset.classes, spec_classes, where)
    empty = np.zeros((0, 4), np.float32)
    return [Item(Path(s.image_path), empty, mapping[[s.class_id]]) for s in dataset.samples]


def normalise_pixels(images: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """uint8 NCHW (from the training sets) → the float32 input the model expects; floats pass through."""
    if images.dtype != torch.uint8:
        return images
    mean, inv_std = _normalisation(spec, images.device)
    return (images.float() - mean) * inv_std  # to_network_input's float32 ops, in its order


@functools.lru_cache(maxsize=8)
def _normalisation(spec: InputSpec, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``spec``'s mean and 1/std as (1, 3, 1, 1) float32 tensors on ``device``, made once, not every step."""
    mean = torch.tensor(spec.mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    inv_std = torch.from_numpy(1.0 / np.asarray(spec.std, np.float32)).to(device).view(1, 3, 1, 1)
    return mean, inv_std


def read_images(paths: Sequence[Path], threads: int = 8) -> list[np.ndarray]:
    """Decode ``paths`` with a thread pool (OpenCV releases the GIL) for a RAM cache of a training set."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max(1, threads)) as pool:
        return list(pool.map(read_image, paths))


def _epoch_index(key: int | tuple[int, int], default_epoch: int) -> tuple[int, int]:
    """``(epoch, index)`` from a sampler key: a bare index uses the dataset's own epoch."""
    return (int(key[0]), int(key[1])) if isinstance(key, tuple) else (default_epoch, int(key))


def worker_init(_: int) -> None:
    """DataLoader workers: one OpenCV and one torch thread each (N workers x N threads oversubscribes)."""
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def item_seed(seed: int, epoch: int, index: int) -> int:
    """A 32-bit seed for one (run, epoch, sample): augmentation depends on nothing else."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


class DetectionTrainSet(torch.utils.data.Dataset):
    """Images + boxes → ``(CHW float tensor, (n, 5) targets)``; see the module docstring."""

    def __init__(
        self,
        items: Sequence[Item],
        spec: InputSpec,
        augment: Augment | None = None,
        mosaic_prob: float = 0.0,
        seed: int = 0,
        cache: bool = False,
        augment_epochs: int | None = None,
        copy_paste: CopyPaste | None = None,
    ) -> None:
        self.items, self.spec, self.augment = list(items), spec, augment
        self.mosaic_prob, self.seed, self.epoch = mosaic_prob, seed, 0
        self.copy_paste = copy_paste  # pastes objects into each augmented image (or each mosaic tile)
        self.augment_epochs = augment_epochs  # epochs (0-based) from this one on see clean images (YOLOX)
        # Decoded once in the main process; DataLoader workers fork after this and share the pages.
        self.cached = read_images([item.image_path for item in self.items]) if cache else None

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose augmentation draws are used (call before building the iterator)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def _load(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        item = self.items[index]
        image = self.cached[index] if self.cached is not None else read_image(item.image_path)
        return image, item.xyxy, item.class_id

    def _load_pasted(
        self, index: int, rng: np.random.Generator, augmenting: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        loaded = self._load(index)
        if augmenting and self.copy_paste is not None:
            return self.copy_paste(*loaded, rng, self._load)
        return loaded

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, index = _epoch_index(key, self.epoch)
        seed = item_seed(self.seed, epoch, index)
        rng = np.random.default_rng(seed)
        augment = self.augment if self.augment_epochs is None or epoch < self.augment_epochs else None
        image, xyxy, class_id = self._load_pasted(index, rng, augment is not None)
        if augment is not None and self.mosaic_prob > 0 and rng.random() < self.mosaic_prob:
            picks = rng.integers(0, len(self.items), 3).tolist()
            loaded = [(image, xyxy, class_id), *(self._load_pasted(i, rng, True) for i in picks)]
            image, xyxy, origin = mosaic([x[0] for x in loaded], [x[1] for x in loaded], self.spec.size_hw)
            # Halve the 2H x 2W canvas before augmenting: the later steps touch a quarter of the pixels
            # and the letterbox below no longer resizes (the mosaic is then exactly the network size).
            image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
            xyxy = xyxy * 0.5
            class_id = np.concatenate([x[2] for x in loaded])[: len(origin)]  # boxes are concatenated in order
        if augment is not None:
            image, xyxy, class_id = augment(image, xyxy, class_id, seed)
        batch, scales = to_network_pixels([image], self.spec)
        boxes = np.asarray(xyxy, np.float32).reshape(-1, 4) * np.asarray([*scales[0], *scales[0]], np.float32)
        targets = np.concatenate([np.asarray(class_id, np.float32).reshape(-1, 1), boxes], 1)
        return torch.from_numpy(batch[0]), torch.from_numpy(targets)


def collate_detection(batch: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack images; pad targets to ``(B, max_n, 5)`` with class -1 rows."""
    images = torch.stack([b[0] for b in batch])
    most = max(1, max(len(b[1]) for b in batch))
    targets = torch.full((len(batch), most, 5), -1.0)
    for i, (_, t) in enumerate(batch):
        targets[i, : len(t)] = t
    return images, targets


class ClassificationTrainSet(torch.utils.data.Dataset):
    """ImageFolder items → ``(CHW uint8 tensor, class id)`` with optional flip and colour jitter."""

    def __init__(self, items: Sequence[Item], spec: InputSpec, augment: bool = False, seed: int = 0) -> None:
        self.items, self.spec, self.augment, self.seed, self.epoch = list(items), spec, augment, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, index = _epoch_index(key, self.epoch)
        item = self.items[index]
        image = read_image(item.image_path)
        if self.augment:
            rng = np.random.default_rng(item_seed(self.seed, epoch, index))
            if rng.random() < 0.5:
                image = image[:, ::-1]
            gain = rng.uniform(0.75, 1.25)
            image = np.clip(image.astype(np.float32) * gain, 0, 255).astype(np.uint8)
        batch, _ = to_network_pixels([np.ascontiguousarray(image)], self.spec)
        return torch.from_numpy(batch[0]), torch.tensor(int(item.class_id[0]))


class GlobalBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Batches of ``batch_size`` indices for ``rank`` of ``world_size``, from one global order per epoch.

    ``max(1, n // global_batch)`` steps per epoch (``n`` padded by repeating the order when smaller), so
    every rank takes the same number of steps. ``with_epoch`` yields ``(epoch, index)`` keys, so datasets
    in persistent DataLoader workers (which never see ``set_epoch``) still draw that epoch's augmentation.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int = 0,
        world_size: int = 1,
        rank: int = 0,
        shuffle: bool = True,
        with_epoch: bool = False,
    ) -> None:
        self.n, self.batch_size, self.seed, self.with_epoch = n, batch_size, seed, with_epoch
        self.world_size, self.rank, self.shuffle, self.epoch = world_size, rank, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return max(1, self.n // (self.batch_size * self.world_size))

    def __iter__(self) -> Iterator[list[int]]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(item_seed(self.seed, self.epoch, _ORDER_STREAM))
            order = torch.randperm(self.n, generator=generator).tolist()
        else:
            order = list(range(self.n))
        step = self.batch_size * self.world_size
        while len(order) < len(self) * step:
            order += order[: len(self) * step - len(order)]
        for b in range(len(self)):
            start = b * step + self.rank * self.batch_size
            yield (
                [(self.epoch, i) for i in order[start : start + self.batch_size]]
                if self.with_epoch
                else order[start : start + self.batch_size]
            )
