import numpy as np
import pytest

from data import dataset, image_io, pipeline, sensor
from data.errors import DataError
from tests.conftest import write_pair_tree


def test_pairs_by_index_and_splits(pair_tree):
    splits = dataset.load_splits(pair_tree)
    assert {k: len(v) for k, v in splits.items()} == {"train": 6, "val": 2}
    assert [p.index for p in splits["train"]] == [str(i) for i in range(6)]


def test_numeric_index_order(tmp_path):
    write_pair_tree(tmp_path, "train", 12)
    pairs, problems = dataset.scan_split(tmp_path, "train")
    assert [p.index for p in pairs][:3] == ["0", "1", "2"] and pairs[-1].index == "11" and not problems


def test_deterministic_split_when_val_missing(tmp_path):
    write_pair_tree(tmp_path, "train", 20)
    first = dataset.load_splits(tmp_path, val_fraction=0.1, seed=3)
    again = dataset.load_splits(tmp_path, val_fraction=0.1, seed=3)
    other = dataset.load_splits(tmp_path, val_fraction=0.1, seed=4)
    assert len(first["val"]) == 2 and len(first["train"]) == 18
    assert first == again and first["val"] != other["val"]
    assert not set(first["val"]) & set(first["train"])


def test_jpeg_target_accepted(tmp_path):
    write_pair_tree(tmp_path, "train", 1)
    png = tmp_path / "train" / "fujifilm" / "0.png"
    rgb = image_io.read_rgb(png)
    png.unlink()
    import cv2
    cv2.imwrite(str(tmp_path / "train" / "fujifilm" / "0.jpg"), rgb[..., ::-1])
    raw, target = dataset.load_pair(dataset.scan_split(tmp_path, "train")[0][0])
    assert raw.shape == (16, 16, 4) and target.shape == (32, 32, 3)


def test_load_pair_values(pair_tree):
    pair = dataset.load_splits(pair_tree)["train"][0]
    raw, rgb = dataset.load_pair(pair)
    mosaic = image_io.read_raw_png(pair.raw_path)
    np.testing.assert_allclose(raw, sensor.normalize(sensor.pack(mosaic)))
    assert raw.dtype == np.float32 and 0 <= raw.min() and raw.max() <= 1 and rgb.max() <= 1


@pytest.mark.parametrize("cfa", sensor.CFA_PATTERNS)
@pytest.mark.parametrize("black", [(0,), (64,), (62, 60, 58, 61)])
def test_tf_data_and_numpy_normalisation_are_bit_equal(tmp_path, cfa, black):
    write_pair_tree(tmp_path, "train", 2, size=16, white=1100)  # counts below black and above white
    profile = sensor.SensorProfile(cfa=cfa, channel_order=("Gr", "B", "R", "Gb"), black_level=black,
                                   white_level=1023)
    pairs = dataset.load_splits(tmp_path)["train"]
    for (raw, rgb), pair in zip(pipeline.decode_pairs(pairs, profile), pairs, strict=True):
        expected_raw, expected_rgb = dataset.load_pair(pair, profile)
        assert raw.dtype == expected_raw.dtype == np.float32
        np.testing.assert_array_equal(raw.numpy().view(np.uint32), expected_raw.view(np.uint32))
        np.testing.assert_array_equal(rgb.numpy().view(np.uint32), expected_rgb.view(np.uint32))
        assert expected_raw.max() == 1 and (expected_raw.min() == 0 or max(black) == 0)  # both clips exercised


def test_missing_dataset_folder_is_clear(tmp_path):
    with pytest.raises(DataError, match="not found"):
        dataset.load_splits(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no split folder"):
        dataset.load_splits(tmp_path / "empty")


def test_training_dataset_shapes_and_determinism(pair_tree):
    pairs = dataset.load_splits(pair_tree)["train"]
    first = [(r.numpy(), t.numpy()) for r, t in pipeline.training_dataset(pairs, 2, epoch=0, seed=1, crop=8)]
    again = [(r.numpy(), t.numpy()) for r, t in pipeline.training_dataset(pairs, 2, epoch=0, seed=1, crop=8)]
    next_epoch = [(r.numpy(), t.numpy()) for r, t in pipeline.training_dataset(pairs, 2, epoch=1, seed=1, crop=8)]
    assert len(first) == 3 and first[0][0].shape == (2, 8, 8, 4) and first[0][1].shape == (2, 16, 16, 3)
    for (a, b), (c, d) in zip(first, again):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    assert not all(np.array_equal(a[0], c[0]) for a, c in zip(first, next_epoch))


def test_cached_pipeline_matches_contents(pair_tree):
    from data import decoded_cache
    pairs = dataset.load_splits(pair_tree)["train"]
    store = decoded_cache.MemoryStore(pairs, progress=False)
    epochs = [sorted(float(r.numpy().sum()) for r, _ in pipeline.training_dataset(
        pairs, 1, epoch=e, crop=None, augment_geometry=False, store=store)) for e in range(2)]
    direct = sorted(float(dataset.load_pair(p)[0].sum()) for p in pairs)
    np.testing.assert_allclose(epochs[0], direct, rtol=1e-5)
    np.testing.assert_allclose(epochs[1], direct, rtol=1e-5)


def test_bad_pair_is_skipped_not_fatal(pair_tree, caplog):
    (pair_tree / "train" / "mediatek_raw" / "2.png").write_bytes(b"garbage")
    pairs = dataset.load_splits(pair_tree)["train"]
    batches = list(pipeline.training_dataset(pairs, 1, epoch=0, crop=8))
    assert len(batches) == 5
    assert any("2.png" in r.getMessage() for r in caplog.records)
