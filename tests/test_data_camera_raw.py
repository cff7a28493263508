"""Reading camera RAW files through rawpy, on DNG files written here with tifffile."""
import numpy as np
import pytest
import tifffile

from data.camera_raw import read_camera_raw
from data.errors import DataError
from data.sensor import normalize, pack

COLOUR_CODE = {"R": 0, "G": 1, "B": 2}  # TIFF/EP CFAPattern codes
CELL_BLACK = (60, 61, 62, 63)  # black level of the 2x2 cell positions, raster order


def write_dng(path, mosaic, cfa_codes, repeat=(2, 2), black=CELL_BLACK, white=4095):
    """Minimal valid DNG: one uint16 CFA image with pattern, black and white levels."""
    tags = [
        (33421, "H", 2, repeat, True),  # CFARepeatPatternDim
        (33422, "B", len(cfa_codes), tuple(cfa_codes), True),  # CFAPattern
        (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
        (50708, "s", 0, "Test Camera", True),  # UniqueCameraModel
        (271, "s", 0, "Test", True),  # Make
        (272, "s", 0, "Camera", True),  # Model
        (50713, "H", 2, (2, 2), True),  # BlackLevelRepeatDim
        (50714, "H", 4, tuple(black), True),  # BlackLevel
        (50717, "H", 1, white, True),  # WhiteLevel
        (50721, "f", 9, (1, 0, 0, 0, 1, 0, 0, 0, 1), True),  # ColorMatrix1
    ]
    tifffile.imwrite(path, mosaic, photometric=32803, subfiletype=0, extratags=tags)


# Expected black levels in the challenge channel order [B, Gb, R, Gr], from CELL_BLACK by hand.
@pytest.mark.parametrize("cfa, expected_black", [
    ("RGGB", [63, 61, 60, 62]),
    ("BGGR", [60, 61, 63, 62]),
    ("GRBG", [62, 60, 61, 63]),
    ("GBRG", [61, 60, 62, 63]),
])
def test_dng_round_trip(tmp_path, cfa, expected_black):
    mosaic = np.random.default_rng(0).integers(64, 4000, (33, 47)).astype(np.uint16)
    path = tmp_path / f"{cfa}.dng"
    write_dng(path, mosaic, [COLOUR_CODE[c] for c in cfa])
    read, profile = read_camera_raw(path)
    assert read.dtype == np.uint16
    np.testing.assert_array_equal(read, mosaic[:32, :46])
    assert profile.cfa == cfa
    assert profile.channel_order == ("B", "Gb", "R", "Gr")
    assert list(profile.black_level) == expected_black
    assert profile.white_level == 4095
    # The profile normalises exactly as (raw - black) / (white - black) per channel.
    packed = pack(read, profile)
    black = np.array(expected_black, np.float32)
    np.testing.assert_allclose(normalize(packed, profile), (packed - black) / (4095 - black), rtol=1e-6)


def test_x_trans_is_refused(tmp_path):
    x_trans = [1, 1, 0, 1, 1, 2, 1, 1, 2, 1, 1, 0, 2, 0, 1, 0, 2, 1,
               1, 1, 2, 1, 1, 0, 1, 1, 0, 1, 1, 2, 0, 2, 1, 2, 0, 1]
    path = tmp_path / "xtrans.dng"
    write_dng(path, np.zeros((36, 36), np.uint16) + 100, x_trans, repeat=(6, 6))
    with pytest.raises(DataError, match="xtrans.dng.*Bayer"):
        read_camera_raw(path)


def test_unreadable_and_missing_files(tmp_path):
    bogus = tmp_path / "photo.nef"
    bogus.write_bytes(b"this is not a raw file" * 10)
    with pytest.raises(DataError, match="photo.nef"):
        read_camera_raw(bogus)
    with pytest.raises(DataError, match="not found"):
        read_camera_raw(tmp_path / "missing.dng")
