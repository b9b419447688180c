"""Human-written durations ("1h30m", "15m", "90s", 3600) to whole seconds and back.

Grammar: one or more `<digits><unit>` parts, units `d`, `h`, `m`, `s` (lowercase), each unit at most
once and in that order, optional spaces between parts. A bare integer (or a string of digits) is seconds.
No fractions and no negatives: "1.5h" is written "1h30m".
"""

from __future__ import annotations

import re

_UNITS: dict[str, int] = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
# Named groups enforce the d > h > m > s order and forbid repeating a unit.
_DURATION = re.compile(r"^(?:(?P<d>\d+)d)?\s*(?:(?P<h>\d+)h)?\s*(?:(?P<m>\d+)m)?\s*(?:(?P<s>\d+)s)?$")
_HINT = "use a whole number of seconds or parts like '90s', '15m', '1h', '1h30m', '2d'"


def parse_duration(value: str | int) -> int:
    """Return the duration in whole seconds; raise ValueError with a readable message if malformed."""
    # bool is an int subclass: `cycle_interval: yes` in YAML must not mean 1 second.
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"duration must be a string like '1h30m' or a whole number of seconds, not {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"duration must not be negative: {value}")
        return value
    text = value.strip()
    if text.isdigit():
        return int(text)
    match = _DURATION.fullmatch(text)
    if not text or match is None or not any(match.groupdict().values()):
        raise ValueError(f"invalid duration {value!r}: {_HINT}")
    return sum(int(amount) * _UNITS[unit] for unit, amount in match.groupdict().items() if amount is not None)


def format_duration(seconds: int) -> str:
    """The shortest canonical form parse_duration accepts: 5400 -> '1h30m', 0 -> '0s'."""
    if seconds < 0:
        raise ValueError(f"duration must not be negative: {seconds}")
    parts: list[str] = []
    rest = seconds
    for unit, size in _UNITS.items():
        amount, rest = divmod(rest, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts) or "0s"
