"""benchmarks/colour_error.py: each oracle fit undoes its own kind of global colour error, and the
CLI runs a real .tflite on a real synthetic set."""
import numpy as np
import pytest

from benchmarks import colour_error
from data import synth, unprocess
from data.sensor import CHALLENGE_PROFILE, pack
from isp import classic, metrics
from tests.tflite_export_testing import tiny_isp_model
from tflite_export.convert import convert


def targets(count=3, size=24):
    rng = np.random.default_rng(0)
    return [rng.uniform(0.1, 0.8, (size, size, 3)).astype(np.float32) for _ in range(count)]


def test_each_fit_undoes_its_kind_of_error():
    truth = targets()
    darker = [t * 0.7 for t in truth]
    balanced_wrong = [t * np.array([0.7, 1.0, 1.2], np.float32) for t in truth]
    matrix = np.array([[0.8, 0.2, 0.0], [0.1, 0.8, 0.1], [0.0, 0.3, 0.7]], np.float32)
    mixed = [t @ matrix.T for t in truth]
    high = 50.0
    scores = colour_error.fitted_psnrs(darker, truth)
    assert scores["PSNR"] < 25 and scores["brightness"] > high
    scores = colour_error.fitted_psnrs(balanced_wrong, truth)
    assert scores["brightness"] < 30 and scores["channel gains"] > high
    scores = colour_error.fitted_psnrs(mixed, truth)
    assert scores["channel gains"] < 35 and scores["colour-fit"] > high
    assert scores["one affine for the set"] > high  # the same matrix for every image: systematic
    per_image = [t @ (matrix if k % 2 else np.eye(3, dtype=np.float32)).T for k, t in enumerate(truth)]
    scores = colour_error.fitted_psnrs(per_image, truth)
    assert scores["colour-fit"] > high > scores["one affine for the set"]


def test_local_error_is_left_by_every_fit():
    truth = targets()
    rng = np.random.default_rng(1)
    noisy = [np.clip(t + rng.normal(0, 0.05, t.shape), 0, 1).astype(np.float32) for t in truth]
    scores = colour_error.fitted_psnrs(noisy, truth)
    assert max(scores.values()) - scores["PSNR"] < 0.3
    assert scores["colour-fit"] == pytest.approx(np.mean([metrics.colour_fit_psnr(n, t)
                                                          for n, t in zip(noisy, truth)]))


def smooth_photo(size=64):
    """A smooth sRGB image [size, size, 3] in [0.1, 0.8], easy to demosaic."""
    y, x = np.mgrid[0:size, 0:size] / size
    return np.stack([0.1 + 0.7 * x, 0.1 + 0.6 * y, 0.8 - 0.7 * x * y], axis=-1).astype(np.float32)


def raw_with(photo, gains, rgb2cam):
    """Noise-free packed RAW [h, w, 4] in [0, 1] of `photo` through the synthesis with these gains and camera."""
    linear = unprocess.apply_ccm(unprocess.gamma_expansion(unprocess.inverse_smoothstep(photo)), rgb2cam)
    camera = np.clip(unprocess.safe_invert_gains(linear, *gains), 0.0, 1.0)
    return pack(unprocess.mosaic(camera, CHALLENGE_PROFILE), CHALLENGE_PROFILE)


def test_content_blind_rendering_inverts_the_synthesis_at_its_typical_parameters():
    photo = smooth_photo()
    typical_camera = np.linalg.inv(classic.CAMERA_TO_SRGB)
    rendering = colour_error.content_blind_rendering(raw_with(photo, unprocess.typical_gains(), typical_camera),
                                                     CHALLENGE_PROFILE)
    assert rendering.shape == photo.shape
    assert metrics.psnr(rendering, photo) > 35
    # Another white balance is not undone: the rendering ignores what the frame's colours say.
    cast = colour_error.content_blind_rendering(raw_with(photo, (1.25, 2.4, 1.5), typical_camera), CHALLENGE_PROFILE)
    assert metrics.psnr(cast, photo) < 30


def test_content_blind_colour_keeps_the_model_detail_and_takes_the_rendering_colour():
    truth = targets()
    rng = np.random.default_rng(2)
    renderings = [np.clip(t + rng.normal(0, 0.1, t.shape), 0, 1).astype(np.float32) for t in truth]  # right colour, noisy
    tinted = [t * np.array([0.7, 1.0, 1.2], np.float32) for t in truth]  # clean detail, wrong colour
    scores = colour_error.content_blind_psnrs(tinted, renderings, truth)
    assert scores["content-blind ISP"] < 25
    assert scores["model + content-blind colour"] > 40
    assert scores["model + content-blind colour"] > metrics.psnr(tinted[0], truth[0]) + 10


def test_cli_table_and_clear_errors(tmp_path, capsys):
    photos = {f"p{k}": (np.random.default_rng(k).random((64, 64, 3)) * 255).astype(np.uint8) for k in range(2)}
    root = tmp_path / "set"
    synth.synthesize_dataset(photos, root, count=3, patch=32, splits={"val": 1.0}, progress=False)
    model = tmp_path / "m.tflite"
    model.write_bytes(convert(tiny_isp_model(), "fp32", (None, None, 4)))
    results = colour_error.main([str(model), "--data", str(root)])
    out = capsys.readouterr().out
    assert ("| model | PSNR | brightness | channel gains | colour-fit | one affine for the set | "
            "content-blind ISP | model + content-blind colour |") in out
    assert set(results[str(model)]) == set(colour_error.COLUMNS)
    with pytest.raises(SystemExit, match="no such model file"):
        colour_error.main([str(tmp_path / "missing.tflite"), "--data", str(root)])
    with pytest.raises(SystemExit, match="no synth.json"):
        colour_error.main([str(model), "--data", str(tmp_path)])
    with pytest.raises(SystemExit, match="no train/ pairs"):
        colour_error.main([str(model), "--data", str(root), "--split", "train"])
