"""Smoke tests of the speed benchmarks: tiny sizes, real measurements, table layout; no timing asserts."""
import pytest

from benchmarks import input_pipeline, train_throughput
from benchmarks.errors import BenchError

TINY = ["--pairs", "8", "--batches", "2", "--seconds", "1", "--rounds", "1", "--crop", "16",
        "--batch-size", "2"]
COLUMNS = ["patches/s", "CPU ms/patch"]


def table_rows(text, first_header):
    """{row name: [cells]} of the table whose header starts with `first_header`; asserts its layout."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first_header + " "))
    header = [c.strip() for c in lines[start].split("|")]
    assert header[1:3] == COLUMNS and header[3].startswith("ratio vs ")
    assert set(lines[start + 1]) <= set("-| ")
    rows = {}
    for line in lines[start + 2:]:
        cells = [c.strip() for c in line.split("|")]
        if len(cells) != 4:
            break
        rows[cells[0]] = [float(c) for c in cells[1:]]
    return rows


def assert_positive(rows, numbers, keys):
    for cells in rows.values():
        assert all(value > 0 for value in cells)
    for key in keys:
        assert numbers[key] > 0 and numbers["cpu_ms_per_patch"][key] > 0


def test_input_pipeline_table(tmp_path, capsys):
    numbers = input_pipeline.main(TINY + ["--work-dir", str(tmp_path)])
    out = capsys.readouterr().out
    rows = table_rows(out, "method")
    assert list(rows) == ["python loop", "tf.data pipeline", "on-the-fly synthesis", "training step"]
    assert rows["python loop"][2] == 1.0
    assert_positive(rows, numbers, ["python_loop", "pipeline", "on_the_fly", "train_step"])
    assert "on-the-fly synthesis" in out and "% of a training step" in out
    assert numbers["pairs"] == 8
    assert numbers["pipeline_vs_python"] == pytest.approx(numbers["pipeline"] / numbers["python_loop"])
    assert f"pipeline / training-step = {numbers['pipeline_vs_train_step']:.1f}" in out
    # the synthetic dataset is built once and reused
    manifest = next(tmp_path.glob("pairs-8/synth.json"))
    built = manifest.stat().st_mtime_ns
    root, pairs = input_pipeline.synthetic_dataset(str(tmp_path), 8)
    assert (root, len(pairs), manifest.stat().st_mtime_ns) == (str(manifest.parent), 8, built)


def test_train_throughput_table(tmp_path, capsys):
    numbers = train_throughput.main(TINY + ["--work-dir", str(tmp_path)])
    out = capsys.readouterr().out
    rows = table_rows(out, "source")
    assert list(rows) == [train_throughput.IN_MEMORY, train_throughput.CACHED, train_throughput.UNCACHED]
    assert rows[train_throughput.IN_MEMORY][2] == 1.0
    assert_positive(rows, numbers, ["in_memory", "pipeline_cached", "pipeline_uncached"])
    assert numbers["steps"] == 2
    cpu = numbers["cpu_ms_per_patch"]
    assert numbers["cached_cpu_ratio"] == pytest.approx(cpu["in_memory"] / cpu["pipeline_cached"])
    verdicts = [line for line in out.splitlines() if "/in-memory = " in line]
    assert len(verdicts) == 2
    for line, key in zip(verdicts, ("cached_vs_in_memory", "uncached_vs_in_memory")):
        ratio = float(line.split("/in-memory = ")[1].split()[0])
        assert ratio == pytest.approx(numbers[key], abs=0.005)
        assert line.endswith("is not the bottleneck)" if ratio >= 0.9 else "IS the bottleneck)")


@pytest.mark.parametrize("flags, message", [(["--pairs", "3"], "cannot fill two batches"),
                                            (["--crop", "256"], "exceeds"),
                                            (["--seconds", "0"], "--seconds")])
def test_bad_sizes_are_clear_errors(tmp_path, flags, message):
    with pytest.raises(BenchError, match=message):
        input_pipeline.main(TINY + ["--work-dir", str(tmp_path)] + flags)


def test_int8_tail_prints_one_row_per_variant_and_recipe(capsys):
    from benchmarks import int8_tail
    assert int8_tail.main(["--height", "8", "--width", "16", "--runs", "1", "--threads", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "DELEGATE" in line
            and "execution plan" not in line]
    assert len(rows) == 2 * len(int8_tail.VARIANTS)
    assert all(float(row.split("|")[3]) >= 0 for row in rows)


@pytest.mark.slow
def test_memory_benchmark_measures_each_mode_in_a_child(tmp_path, capsys):
    from benchmarks import memory
    from tests.conftest import write_pair_tree
    write_pair_tree(tmp_path / "src", "train", 18, size=128)
    write_pair_tree(tmp_path / "src", "val", 1, size=128, seed=1)
    assert memory.main(["--sizes", "16,17", "--steps", "1", "--modes", "before,disk,none",
                        "--source", str(tmp_path / "src"), "--work", str(tmp_path / "work")]) == 0
    rows = [line.split("|")[1:-1] for line in capsys.readouterr().out.splitlines() if line.startswith("| 1")]
    assert [(r[0].strip(), r[3].strip()) for r in rows] == [
        (size, mode) for size in ("16", "17") for mode in ("before (tf.data cache)", "disk", "none")]
    assert all(float(r[4]) > 0 and float(r[7]) > 0 for r in rows)  # peak RSS GB, patches/s
    assert (tmp_path / "work" / "cache" / "decoded").is_dir()
