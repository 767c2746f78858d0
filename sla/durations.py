"""Durations as written in the configuration: "30m", "4h", "2h30m", "45s" or ISO 8601 "PT4H30M".

Days and weeks are refused on purpose: in business time "1d" could mean 24 hours or one business
day of 8 hours, and guessing wrong moves every deadline. Write hours instead ("8h", "40h").
"""

from __future__ import annotations

import re
from datetime import timedelta

_SHORT = re.compile(r"(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?")
_ISO = re.compile(r"PT(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?")
_DAYS = re.compile(r"^(?:\d+\s*(?:d|w|days?|weeks?)\b|P(?:\d+[YMWD])+)", re.IGNORECASE)

EXAMPLES = "30m, 4h, 2h30m or PT4H"


def parse_duration(text: object, where: str) -> timedelta:
    """Parse a positive duration; `where` names the configuration path for the error message."""
    if not isinstance(text, str) or isinstance(text, bool):
        raise ValueError(f"{where}: {text!r} is not a duration like {EXAMPLES} (write it as a string)")
    s = text.strip()
    if _DAYS.match(s):
        raise ValueError(
            f"{where}: {text!r} uses days or weeks, which are ambiguous in business time; "
            "write hours instead, e.g. 8h or 40h"
        )
    m = _SHORT.fullmatch(s) or _ISO.fullmatch(s.upper())
    if not s or s.upper() == "PT" or m is None:
        raise ValueError(f"{where}: {text!r} is not a duration like {EXAMPLES}")
    h, mi, se = (int(m.group(g) or 0) for g in ("h", "m", "s"))
    try:
        value = timedelta(hours=h, minutes=mi, seconds=se)
    except OverflowError:  # past timedelta's 999,999,999 days
        raise ValueError(f"{where}: {text!r} is too long for a duration") from None
    if value <= timedelta(0):
        raise ValueError(f"{where}: {text!r} must be longer than zero")
    return value


def format_duration(value: timedelta) -> str:
    """Short human form used in comments and the API: "2h30m", "45s", "0m", "-1h"."""
    total = int(value.total_seconds())
    sign = "-" if total < 0 else ""
    total = abs(total)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    parts = [f"{h}h" if h else "", f"{m}m" if m else "", f"{s}s" if s else ""]
    out = "".join(parts)
    return sign + (out or "0m")
