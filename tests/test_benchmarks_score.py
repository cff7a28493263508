import pytest

from benchmarks.errors import BenchError
from benchmarks.score import budget_verdict, parse_budget, sized_budget
from data.challenge import challenge_score


@pytest.mark.parametrize("latency,verdict", [
    (5.0, "within 20 ms"), (20.0, "within 20 ms"), (20.01, "within 20–50 ms budget"),
    (50.0, "within 20–50 ms budget"), (50.5, "over budget"),
])
def test_default_budget(latency, verdict):
    assert budget_verdict(latency) == verdict


def test_custom_budget():
    assert budget_verdict(12.0, 10, 15) == "within 10–15 ms budget"
    assert budget_verdict(16.0, 10, 15) == "over budget"
    assert budget_verdict(7.5, 7.5, 7.5) == "within 7.5 ms"


def test_bad_budget_bounds():
    with pytest.raises(ValueError):
        budget_verdict(10, 50, 20)


@pytest.mark.parametrize("text,expected", [("20,50", (20.0, 50.0)), (" 16.6, 33.3", (16.6, 33.3))])
def test_parse_budget(text, expected):
    assert parse_budget(text) == expected


@pytest.mark.parametrize("text", ["20", "20,50,70", "a,b", "50,20", "0,10"])
def test_parse_budget_rejects(text):
    with pytest.raises(BenchError, match="--budget-ms"):
        parse_budget(text)


def test_challenge_score():
    assert challenge_score(23.0, 0.05) == pytest.approx(2 ** 46 / 0.05)
    assert challenge_score(23.0, 0.05, c=4.0) == pytest.approx(challenge_score(23.0, 0.05) / 4)
    # +0.5 dB PSNR is worth exactly half the runtime
    assert challenge_score(23.5, 0.1) == pytest.approx(challenge_score(23.0, 0.05))


@pytest.mark.parametrize("runtime,c", [(0.0, 1.0), (-1.0, 1.0), (0.05, 0.0)])
def test_challenge_score_rejects_non_positive(runtime, c):
    with pytest.raises(ValueError):
        challenge_score(23.0, runtime, c)


def test_sized_budget_judges_full_hd_only():
    full_hd = sized_budget(40.0, [1, 544, 960, 4])
    assert full_hd["verdict"] == "within 20–50 ms budget" and full_hd["input_hw"] == [544, 960]
    assert full_hd["ms_per_mp"] == pytest.approx(40.0 / 2.08896)
    microisp = sized_budget(120.0, (1500, 2000))  # MicroISP's published fixed input: a 12 MP output
    assert microisp["verdict"] == "input 1500x2000: no Full HD verdict"
    assert microisp["ms_per_mp"] == pytest.approx(10.0)
