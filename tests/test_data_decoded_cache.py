"""Decoded caches (`--cache memory|disk|none|auto`): the disk store gives the memory store's batches bit for
bit, survives a killed build, is rebuilt when a file changes; auto picks by the memory budget."""
import dataclasses
import logging
import os

import numpy as np
import pytest

from data import dataset, decoded_cache, image_io, pipeline
from isp import config as config_mod
from isp.errors import ISPError
from tests.conftest import write_pair_tree


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("ISP_CACHE_DIR", str(folder))
    return folder / "decoded"


def epoch_batches(pairs, store, epoch, seed=3):
    return [(r.numpy(), t.numpy()) for r, t in
            pipeline.training_dataset(pairs, 2, epoch=epoch, seed=seed, crop=4, store=store)]


def assert_same_batches(first, second):
    assert len(first) == len(second) > 0
    for (a, b), (c, d) in zip(first, second):
        assert a.dtype == c.dtype == np.float32
        np.testing.assert_array_equal(a.view(np.uint32), c.view(np.uint32))
        np.testing.assert_array_equal(b.view(np.uint32), d.view(np.uint32))


def test_disk_store_gives_the_memory_store_batches_bit_for_bit(pair_tree, cache_dir, caplog):
    (pair_tree / "train" / "mediatek_raw" / "4.png").write_bytes(b"garbage")  # a bad pair: skipped, warned
    pairs = dataset.load_splits(pair_tree)["train"]
    with caplog.at_level(logging.WARNING):
        memory = decoded_cache.MemoryStore(pairs, progress=False)
        disk = decoded_cache.DiskStore(pairs, progress=False)
    assert len(memory) == len(disk) == 5
    assert sum("4.png" in r.getMessage() for r in caplog.records) == 2
    assert os.path.dirname(disk.folder) == str(cache_dir)
    for epoch in range(3):
        assert_same_batches(epoch_batches(pairs, memory, epoch), epoch_batches(pairs, disk, epoch))
    first, second = epoch_batches(pairs, disk, 0), epoch_batches(pairs, disk, 1)
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(first, second))
    for k in range(len(disk)):
        for x, y in zip(memory.get(k), disk.get(k)):
            assert x.dtype == y.dtype and np.array_equal(x, y)


def test_a_killed_build_is_rebuilt_never_read(pair_tree, cache_dir, monkeypatch):
    pairs = dataset.load_splits(pair_tree)["train"]
    expected = decoded_cache.MemoryStore(pairs, progress=False)
    original, calls = decoded_cache._read_or_none, []

    def dies_on_the_third_pair(pair, profile):
        calls.append(pair)
        if len(calls) == 3:
            raise KeyboardInterrupt  # a kill while the flat files are half written
        return original(pair, profile)

    monkeypatch.setattr(decoded_cache, "_read_or_none", dies_on_the_third_pair)
    with pytest.raises(KeyboardInterrupt):
        decoded_cache.DiskStore(pairs, progress=False)
    monkeypatch.setattr(decoded_cache, "_read_or_none", original)
    assert not os.listdir(cache_dir)  # nothing left, nothing renamed into place
    # What a SIGKILL leaves: a partial temporary folder of a dead process, and a final folder whose files
    # do not match their manifest (truncated). Neither is read; the store is rebuilt.
    key = decoded_cache.store_key(pairs, decoded_cache.sensor.CHALLENGE_PROFILE)
    partial = cache_dir / f".{key}.tmp-999999999-abc"
    partial.mkdir()
    (partial / decoded_cache.RAW_FILE).write_bytes(b"\0" * 100)
    store = decoded_cache.DiskStore(pairs, progress=False)
    assert not partial.exists()
    raw_file = os.path.join(store.folder, decoded_cache.RAW_FILE)
    store.close()
    with open(raw_file, "r+b") as f:
        f.truncate(1000)
    store = decoded_cache.DiskStore(pairs, progress=False)
    assert os.path.getsize(raw_file) > 1000
    for k in range(len(store)):
        assert all(np.array_equal(x, y) for x, y in zip(store.get(k), expected.get(k)))
    assert sorted(os.listdir(cache_dir)) == [key]


def test_a_changed_file_invalidates_the_disk_store(pair_tree, cache_dir):
    pairs = dataset.load_splits(pair_tree)["train"]
    before = decoded_cache.DiskStore(pairs, progress=False)
    first_raw = before.get(0)[0].copy()
    again = decoded_cache.DiskStore(pairs, progress=False)
    assert again.folder == before.folder
    manifest_time = os.path.getmtime(os.path.join(before.folder, decoded_cache.MANIFEST))
    image_io.write_png(pairs[0].raw_path, np.full((32, 32), 7, np.uint16))  # new content, size and mtime
    after = decoded_cache.DiskStore(pairs, progress=False)
    assert os.path.getmtime(os.path.join(after.folder, decoded_cache.MANIFEST)) >= manifest_time
    assert (after.get(0)[0] == 7).all() and not (first_raw == 7).all()
    packing = decoded_cache._packing(decoded_cache.sensor.CHALLENGE_PROFILE)
    os.utime(pairs[1].rgb_path, ns=(1, 1))  # only an mtime changes: out of date, rebuilt
    assert not decoded_cache._is_valid(after.folder, decoded_cache._file_facts(pairs), packing)
    rebuilt = decoded_cache.DiskStore(pairs, progress=False)
    assert decoded_cache._is_valid(rebuilt.folder, decoded_cache._file_facts(pairs), packing)
    assert len(decoded_cache.DiskStore(pairs[:-1], progress=False)) == len(pairs) - 1  # fewer files: another store


def test_auto_picks_disk_when_the_estimate_exceeds_the_budget(pair_tree, monkeypatch):
    pairs = dataset.load_splits(pair_tree)["train"]
    size = decoded_cache.estimate_bytes(pairs)
    assert size == 6 * 32 * 32 * 5  # uint16 mosaic + uint8 RGB of 32x32 px per pair
    assert decoded_cache.choose("auto", pairs, budget=size - 1)[0] == "disk"
    picked, reason = decoded_cache.choose("auto", pairs, budget=size)
    assert picked == "memory" and "fits the memory budget" in reason
    monkeypatch.setenv(decoded_cache.BUDGET_ENV, "0.001")
    assert decoded_cache.choose("auto", pairs)[0] == "disk"
    assert decoded_cache.choose("memory", pairs) == ("memory", "as asked")


def test_cache_config_keeps_old_booleans_and_the_no_cache_flag(tmp_path):
    import argparse

    from isp import cli
    path = tmp_path / "old.yaml"
    for text, mode in (("cache: true\n", "memory"), ("cache: false\n", "none"), ("cache: disk\n", "disk")):
        path.write_text(text)
        assert config_mod.resolve({}, config_file=str(path)).cache == mode
    assert config_mod.resolve({}).cache == "auto"
    with pytest.raises(ISPError, match="cache must be one of auto, memory, disk, none"):
        config_mod.resolve({"cache": "ram"})
    parser = argparse.ArgumentParser()
    cli.add_train_arguments(parser)
    assert cli.overrides_from_args(parser.parse_args(["--no-cache"])) == {"cache": "none"}
    assert cli.overrides_from_args(parser.parse_args(["--cache", "disk"])) == {"cache": "disk"}


def test_trainer_disk_and_memory_caches_train_the_same_batches_and_resume_exactly(cache_dir, tmp_path,
                                                                                  monkeypatch, capsys):
    from isp import train
    from train_testing import train_interrupted
    write_pair_tree(tmp_path / "d", "train", 6)
    write_pair_tree(tmp_path / "d", "val", 2, seed=1)
    base = dict(data=str(tmp_path / "d"), runs_dir=str(tmp_path / "runs"), model="plain", epochs=2, batch_size=2,
                crop=8, val_images=1, qat_epochs=0, msssim_weight=0.0)
    trainers = {mode: train.Trainer(config_mod.resolve(dict(base, cache=mode)), str(tmp_path / mode), False)
                for mode in ("memory", "disk")}
    assert "decoded cache: disk (as asked)" in capsys.readouterr().out
    assert_same_batches([(r.numpy(), t.numpy()) for r, t in trainers["memory"]._batches(1)],
                        [(r.numpy(), t.numpy()) for r, t in trainers["disk"]._batches(1)])
    cfg = config_mod.resolve(dict(base, cache="disk", name="whole"))
    train.train(cfg, progress=False)
    train_interrupted(dataclasses.replace(cfg, name="split"), monkeypatch)
    train.resume(str(tmp_path / "runs" / "split"), progress=False)
    from test_isp_train import last_weights
    for a, b in zip(last_weights(str(tmp_path / "runs" / "split")), last_weights(str(tmp_path / "runs" / "whole"))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
