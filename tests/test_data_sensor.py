import numpy as np
import pytest

from data import sensor
from data.errors import DataError


@pytest.mark.parametrize("cfa", sensor.CFA_PATTERNS)
def test_pack_unpack_round_trip_every_cfa(cfa):
    rng = np.random.default_rng(0)
    profile = sensor.SensorProfile(cfa=cfa)
    mosaic = rng.integers(0, 1024, (12, 18), dtype=np.uint16)
    packed = sensor.pack(mosaic, profile)
    assert packed.shape == (6, 9, 4)
    np.testing.assert_array_equal(sensor.unpack(packed, profile), mosaic)
    np.testing.assert_array_equal(sensor.pack(sensor.unpack(packed, profile), profile), packed)


def test_challenge_packing_matches_official_script():
    mosaic = np.arange(16 * 16, dtype=np.uint16).reshape(16, 16)
    official = np.dstack((mosaic[1::2, 1::2], mosaic[0::2, 1::2], mosaic[0::2, 0::2], mosaic[1::2, 0::2]))
    np.testing.assert_array_equal(sensor.pack(mosaic), official)
    np.testing.assert_allclose(sensor.normalize(sensor.pack(mosaic)), np.clip(official / 1020.0, 0, 1), rtol=1e-6)


@pytest.mark.parametrize("cfa,expected", [("RGGB", (0, 0)), ("BGGR", (1, 1)), ("GRBG", (0, 1)), ("GBRG", (1, 0))])
def test_red_channel_position(cfa, expected):
    profile = sensor.SensorProfile(cfa=cfa, channel_order=("R", "Gb", "Gr", "B"))
    assert profile.channel_offsets()[0] == expected


def test_per_channel_black_level_normalisation():
    profile = sensor.SensorProfile(black_level=(62, 60, 58, 61), white_level=1023)
    packed = np.array([[[62, 60, 58, 61], [1023, 1023, 1023, 1023]]], np.uint16)
    out = sensor.normalize(packed, profile)
    np.testing.assert_allclose(out, [[[0, 0, 0, 0], [1, 1, 1, 1]]], atol=1e-6)
    np.testing.assert_allclose(sensor.denormalize(out, profile), packed, atol=1e-3)


@pytest.mark.parametrize("kwargs", [dict(cfa="RGBG"), dict(channel_order=("R", "G", "B", "B")),
                                    dict(black_level=(1, 2)), dict(black_level=(1020,), white_level=1020)])
def test_bad_profile_is_a_data_error(kwargs):
    with pytest.raises(DataError):
        sensor.SensorProfile(**kwargs)


def test_odd_mosaic_rejected():
    with pytest.raises(DataError, match="even"):
        sensor.pack(np.zeros((5, 6), np.uint16))


def test_atomic_write_has_normal_permissions(tmp_path):
    import os
    from data.atomic import write_text
    write_text(tmp_path / "a.txt", "x")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~umask
