"""Timestamps as journalctl takes them (``-S``/``--since``, ``-U``/``--until``), in µs.

Accepted, as in ``systemd.time(7)``: ``YYYY-MM-DD [HH:MM[:SS[.ffffff]]]`` (local time, or
with a trailing ``UTC``), ``HH:MM[:SS]`` (today), ``now``, ``today``, ``yesterday``,
``tomorrow``, ``@SECONDS``, and relative spans: ``-1h``, ``+30min``, ``2 days ago``,
``-1h 30min``.
"""

from __future__ import annotations

import datetime
import re

_UNITS = {
    "us": 1, "usec": 1, "ms": 1_000, "msec": 1_000,
    "s": 1_000_000, "sec": 1_000_000, "second": 1_000_000, "seconds": 1_000_000,
    "m": 60_000_000, "min": 60_000_000, "minute": 60_000_000, "minutes": 60_000_000,
    "h": 3_600_000_000, "hr": 3_600_000_000, "hour": 3_600_000_000, "hours": 3_600_000_000,
    "d": 86_400_000_000, "day": 86_400_000_000, "days": 86_400_000_000,
    "w": 604_800_000_000, "week": 604_800_000_000, "weeks": 604_800_000_000,
}
_SPAN_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)")
_FORMATS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d",
            "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M")


class TimeSpecError(ValueError):
    """A timestamp that cannot be parsed; the message says which."""


def parse_span(text: str) -> int:
    """``1h 30min`` → µs. A bare number is seconds."""
    pos, total, text = 0, 0, text.strip()
    if not text:
        raise TimeSpecError("empty time span")
    while pos < len(text):
        match = _SPAN_PART.match(text, pos)
        if match is None or match.end() == pos:
            raise TimeSpecError(f"bad time span {text!r}")
        number, unit = match.groups()
        if unit not in _UNITS and unit != "":
            raise TimeSpecError(f"unknown time unit {unit!r} in {text!r}")
        total += int(float(number) * _UNITS.get(unit, 1_000_000))
        pos = match.end()
    return total


def _midnight(now: datetime.datetime, days: int) -> datetime.datetime:
    day = now.astimezone().date() + datetime.timedelta(days=days)
    return datetime.datetime.combine(day, datetime.time()).astimezone()


def parse_timestamp(text: str, now_us: int | None = None) -> int:
    """The instant ``text`` names, in µs since the epoch.

    :raises TimeSpecError: with the text quoted.
    """
    now_us = now_us if now_us is not None else int(datetime.datetime.now().timestamp() * 1e6)
    now = datetime.datetime.fromtimestamp(now_us / 1e6).astimezone()
    spec = text.strip()
    words = {"now": now, "today": _midnight(now, 0), "yesterday": _midnight(now, -1),
             "tomorrow": _midnight(now, 1)}
    if spec in words:
        return now_us if spec == "now" else int(words[spec].timestamp() * 1_000_000)
    if spec.startswith("@"):
        try:
            return int(float(spec[1:]) * 1_000_000)
        except ValueError as err:
            raise TimeSpecError(f"bad timestamp {text!r}") from err
    if spec.startswith(("-", "+")):
        sign = -1 if spec[0] == "-" else 1
        return now_us + sign * parse_span(spec[1:])
    if spec.endswith(" ago"):
        return now_us - parse_span(spec[:-4])
    if spec.endswith(" left"):
        return now_us + parse_span(spec[:-5])
    utc = spec.endswith((" UTC", " Z"))
    if utc:
        spec = spec.rsplit(" ", 1)[0]
    for fmt in _FORMATS + ("%H:%M:%S", "%H:%M"):
        try:
            parsed = datetime.datetime.strptime(spec, fmt)
        except ValueError:
            continue
        if fmt.startswith("%H"):
            parsed = datetime.datetime.combine(now.date(), parsed.time())
        if utc:
            parsed = parsed.replace(tzinfo=datetime.UTC)
        else:
            parsed = parsed.astimezone()
        return int(parsed.timestamp() * 1_000_000)
    raise TimeSpecError(f"cannot parse timestamp {text!r} (try 'YYYY-MM-DD HH:MM:SS', "
                        f"'-1h', 'yesterday' or '@EPOCH')")
