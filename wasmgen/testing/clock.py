"""Time-valued headers in real Envoy, checked strictly against the embedded host's.

The embedded host runs at a fixed clock (TEST_CLOCK), Envoy at the real one, so a header a
${time.http} or ${time.unix} value writes cannot be compared as text. Instead the host's value,
with its times cut out, is the template Envoy's must fill: every literal part equal, each
${time.http} an IMF-fixdate (RFC 9110 5.6.7), each ${time.unix} decimal seconds, and every time
within the exchange's wall-clock window (a second of slack either side: the plugin truncates).
"""

from __future__ import annotations

import calendar
import math
import re

from wasmgen.envoy_headers import TEST_CLOCK
from wasmgen.records import record
from wasmgen.semantics.values import http_date

SLACK = 1  # seconds either side of the window
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_FIXDATE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([0-9]{2}) ([A-Z][a-z]{2}) ([0-9]{4}) "
    r"([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT"
)
_UNIX = re.compile(r"0|[1-9][0-9]*")
_SHOWN = {"time.http": http_date(TEST_CLOCK), "time.unix": str(TEST_CLOCK)}
_WHAT = {"time.http": "an IMF-fixdate (RFC 9110)", "time.unix": "decimal seconds"}


def fixdate_seconds(text: str) -> int | None:
    """The time an IMF-fixdate names, or None when text is not one (a wrong weekday, day or
    field width included)."""
    m = _FIXDATE.fullmatch(text)
    if m is None or m.group(2) not in _MONTHS:
        return None
    day, year, hh, mm, ss = (int(m.group(i)) for i in (1, 3, 4, 5, 6))
    if not (1 <= day <= 31 and hh < 24 and mm < 60 and ss < 60):
        return None
    seconds = calendar.timegm((year, _MONTHS.index(m.group(2)) + 1, day, hh, mm, ss))
    return seconds if http_date(seconds) == text else None  # 31 Feb, or the wrong weekday


def unix_seconds(text: str) -> int | None:
    """The seconds a ${time.unix} value names, or None when text is not decimal seconds."""
    return int(text) if _UNIX.fullmatch(text) else None


@record
class Window:
    """The wall-clock time an exchange took, in seconds since the epoch."""

    start: float
    end: float

    def holds(self, seconds: int) -> bool:
        """Whether seconds falls inside, with SLACK either side."""
        return math.floor(self.start) - SLACK <= seconds <= math.ceil(self.end) + SLACK

    def __str__(self) -> str:
        lo, hi = math.floor(self.start) - SLACK, math.ceil(self.end) + SLACK
        return f"{lo}..{hi} ({http_date(lo)} to {http_date(hi)})"


@record
class Clocked:
    """The headers ${time.*} values write (name -> time.http/time.unix) and the window."""

    kinds: dict[str, frozenset[str]]
    window: Window

    def mismatch(self, name: str, envoy: str, host: str) -> str | None:
        """Why Envoy's value of name does not match the host's, or None when it does."""
        times = {_SHOWN[k]: k for k in sorted(self.kinds.get(name, ()))}
        cut = "(" + "|".join(map(re.escape, times)) + ")"
        pieces = re.split(cut, host) if times else [host]  # literal, time, literal, ...
        if len(pieces) == 1:  # no time in the host's value (another rule wrote it)
            return None if envoy == host else f"Envoy {envoy!r}, embedded host {host!r}"
        kinds = [times[t] for t in pieces[1::2]]
        m = re.fullmatch("(.+?)".join(map(re.escape, pieces[0::2])), envoy)
        if m is None:
            return f"Envoy {envoy!r} is not the embedded host's {host!r} with its time replaced"
        for kind, text in zip(kinds, m.groups(), strict=True):
            seconds = fixdate_seconds(text) if kind == "time.http" else unix_seconds(text)
            if seconds is None:
                return f"Envoy {envoy!r}: {text!r} is not {_WHAT[kind]}, as ${{{kind}}} writes"
            if not self.window.holds(seconds):
                return f"Envoy {envoy!r}: {text!r} is outside the exchange's time {self.window}"
        return None
