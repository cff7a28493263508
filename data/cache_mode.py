"""The training cache modes (`--cache`), apart from data/decoded_cache.py so that parsing a config
imports no image library."""
from data.errors import DataError

MODES = ("auto", "memory", "disk", "none")


def parse(value):
    """The cache mode of a config value: a mode name, or the booleans of configs written before the modes
    existed (`cache: true` = memory, `cache: false` = none)."""
    if isinstance(value, bool):
        return "memory" if value else "none"
    text = str(value).strip().lower()
    if text in ("true", "yes", "1"):
        return "memory"
    if text in ("false", "no", "0"):
        return "none"
    if text not in MODES:
        raise DataError(f"cache must be one of {', '.join(MODES)} (or true/false), got {value!r}")
    return text
