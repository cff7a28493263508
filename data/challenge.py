"""The Mobile AI learned-ISP challenge's constants, one definition each; every package imports them.

data/ is the bottom of the stack, so the exporter, the benchmarks and the CLIs can all read these.
"""

FULL_HD_PACKED = (544, 960)   # packed RAW input height, width of a Full HD frame
FULL_HD_RGB = (1088, 1920)    # the RGB output of that input (2x the packed size)
BUDGET_MS = (20.0, 50.0)      # phone-GPU latency budget of a Full HD frame, lo and hi
SCORE_C = 1.0                 # the score's constant C: the organisers never published it

# the challenge's sensor convention (data.sensor.CHALLENGE_PROFILE is built from these)
CFA = "RGGB"
CHANNEL_ORDER = ("B", "Gb", "R", "Gr")
BLACK_LEVEL = 0.0
WHITE_LEVEL = 1020.0          # 4 * 255: the challenge divides the raw values by 1020


def challenge_score(psnr_db, runtime_s, c=SCORE_C):
    """Challenge score 2^(2 * psnr_db) / (c * runtime_s); `c` is the unpublished constant."""
    if runtime_s <= 0 or c <= 0:
        raise ValueError(f"runtime_s and c must be positive, got {runtime_s}, {c}")
    return 2.0 ** (2.0 * psnr_db) / (c * runtime_s)


def pair_text(pair):
    """(544, 960) -> '544,960' and (20.0, 50.0) -> '20,50': a constant as its flag's default text."""
    return f"{pair[0]:g},{pair[1]:g}"


FULL_HD_TEXT = pair_text(FULL_HD_PACKED)
BUDGET_TEXT = pair_text(BUDGET_MS)
