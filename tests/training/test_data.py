import gzip
import pathlib
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from training.data import REPO_ROOT, fit_to_shape, load_splits, portable, read_idx


def write_idx(path, array: np.ndarray) -> None:
    header = (
        b"\x00\x00\x08" + bytes([array.ndim]) + b"".join(struct.pack(">I", s) for s in array.shape)
    )
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def fake_mnist_folder(root, train=120, test=30, size=28):
    rng = np.random.default_rng(0)
    for prefix, count in (("train", train), ("t10k", test)):
        write_idx(
            root / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (count, size, size))
        )
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", np.arange(count) % 10)
    return root


def test_read_idx_round_trip(tmp_path):
    array = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    write_idx(tmp_path / "x.gz", array)
    assert np.array_equal(read_idx(tmp_path / "x.gz"), array)


def test_torchvision_dataset_from_a_flat_folder_of_idx_files(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTSERVE_DATA_CACHE", str(tmp_path / "cache"))
    (tmp_path / "fashion").mkdir()
    root = fake_mnist_folder(tmp_path / "fashion")
    splits = load_splits("fashion-mnist", root, seed=0, val_size=20)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (100, 20, 30)
    assert splits.train.images.dtype == torch.float32 and splits.train.labels.dtype == torch.int64
    assert splits.train.images.shape[1:] == (1, 28, 28)
    assert splits.train.images.min() >= 0 and splits.train.images.max() <= 1
    assert splits.info["sizes"] == {"train": 100, "validation": 20, "test": 30}
    assert set(splits.info) == {"name", "source", "split", "sizes"}
    assert splits.classes[0] == "T-shirt/top"
    same = load_splits("fashion-mnist", root, seed=0, val_size=20)
    other = load_splits("fashion-mnist", root, seed=1, val_size=20)
    assert torch.equal(same.val.images, splits.val.images)
    assert not torch.equal(other.val.images, splits.val.images)
    # the validation slice and the training set never share an image
    all_train = torch.cat([splits.train.images, splits.val.images]).flatten(1)
    assert torch.unique(all_train, dim=0).shape[0] == 120


def test_mnist_test_only_split_is_fixed_by_position(tmp_path):
    root = tmp_path / "mnist"
    root.mkdir()
    labels = np.arange(10000) % 10
    images = np.zeros((10000, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = np.arange(10000) % 256
    write_idx(root / "t10k-images-idx3-ubyte.gz", images)
    write_idx(root / "t10k-labels-idx1-ubyte.gz", labels)
    splits = load_splits("mnist-test-only", root, seed=5)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (8000, 1000, 1000)
    assert splits.val.images[0, 0, 0, 0].item() == pytest.approx((8000 % 256) / 255)
    assert splits.info["split"]["test"] == "t10k images 9000-9999"
    limited = load_splits("mnist-test-only", root, train_limit=500)
    assert len(limited.train) == 500 and limited.info["sizes"]["train"] == 500


def test_image_folder_of_mixed_sizes_and_modes(tmp_path):
    rng = np.random.default_rng(0)
    for index, name in enumerate(["cats", "dogs"]):
        (tmp_path / name).mkdir()
        for i in range(10):
            size = (20 + i, 30 - i)
            pixels = rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)
            picture = Image.fromarray(pixels)
            (picture.convert("L") if i % 2 else picture).save(tmp_path / name / f"{index}{i}.png")
    splits = load_splits("image-folder", tmp_path, seed=0, image_shape=(3, 16, 16))
    assert splits.classes == ["cats", "dogs"]
    assert splits.image_shape == (3, 16, 16)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (16, 2, 2)
    gray = load_splits("image-folder", tmp_path, seed=0, image_shape=(1, 8, 8))
    assert gray.image_shape == (1, 8, 8)


def test_fit_to_shape_converts_channels_and_size():
    rgb = torch.rand(2, 3, 10, 10)
    assert fit_to_shape(rgb, (1, 4, 4)).shape == (2, 1, 4, 4)
    assert fit_to_shape(rgb[:, :1], (3, 10, 10)).shape == (2, 3, 10, 10)
    assert fit_to_shape(rgb, None) is rgb


def test_unknown_dataset_and_missing_files_say_why(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset"):
        load_splits("cifar", tmp_path)
    with pytest.raises(FileNotFoundError, match="download"):
        load_splits("kmnist", tmp_path)


def test_batches_cover_the_split_once():
    from training.data import ImageSplit

    split = ImageSplit(torch.arange(10.0).view(10, 1, 1, 1), torch.arange(10))
    seen = torch.cat(
        [
            labels
            for _, labels in split.batches(
                3, shuffle=True, generator=torch.Generator().manual_seed(0)
            )
        ]
    )
    assert sorted(seen.tolist()) == list(range(10))
    assert seen.tolist() != list(range(10))


def test_data_roots_beside_the_project_are_stated_relative_to_it(tmp_path):
    assert portable(REPO_ROOT.parent / "shared" / "datasets" / "mnist") == (
        "../shared/datasets/mnist"
    )
    outside = tmp_path if not tmp_path.is_relative_to(REPO_ROOT.parent) else pathlib.Path("/usr")
    assert portable(outside) == f"a local folder named {outside.name}"
