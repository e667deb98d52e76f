"""Rules for every user-given value other than a document's text (docs/bad-input.md, "Fields").

One limit per field, enforced here before anything reaches SQL, so SQLite (which would store
anything) and PostgreSQL (which refuses NUL and values longer than a column) give the same
answer. A value breaks a rule when it holds a NUL, a lone surrogate (it cannot be encoded as
UTF-8), another C0/C1 control where the field says so, or more characters than its limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from storage.core.errors import PermanentError

# document.ext_id is String(1000).
MAX_DOC_ID = 1000
# job.name is String(200).
MAX_NAME = 200
# job.client_token is String(200) and holds "<key name>\x1f<token>" (key names are at most 100).
MAX_CLIENT_TOKEN = 99
# job.model is String(200); a model is a directory name.
MAX_MODEL = 200
# job.notify_url is Text; browsers and proxies refuse much longer URLs anyway.
MAX_URL = 2000
# Exact-match filters (entity text, type, document id) compare with stored values no longer.
MAX_FILTER = 1000
# Field names of JSON objects and CSV headers.
MAX_FIELD_NAME = 100

#: The rules as JSON-Schema patterns (the OpenAPI document states them, FastAPI enforces them).
SINGLE_LINE_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
NO_NUL_PATTERN = r"^[^\x00]*$"
#: Cursors are row ids this API returned: ASCII digits, fewer than 19 (below 2^63 on both databases).
CURSOR_PATTERN = r"^[0-9]{1,18}$"

_NUL_OR_SURROGATE = re.compile("[\x00\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_JOB_ID = re.compile("[0-9a-f]{32}")


@dataclass(frozen=True)
class Field:
    """A named value rule: at most ``limit`` characters; no controls at all when ``single_line``."""

    name: str
    limit: int
    single_line: bool = False

    def problem(self, value: str) -> str | None:
        """Why ``value`` breaks the rule, or None when it is fine."""
        bad = (_CONTROL if self.single_line else _NUL_OR_SURROGATE).search(value)
        if bad is not None:
            code = ord(bad.group())
            what = "a lone surrogate" if 0xD800 <= code <= 0xDFFF else "a NUL" if code == 0 else "a control character"
            return f"{self.name} holds {what} (U+{code:04X}) at character {bad.start()}"
        if len(value) > self.limit:
            return f"{self.name} has {len(value):,} characters; the limit is {self.limit:,}"
        return None

    def check(self, value: str | None) -> str | None:
        """``value`` unchanged (None stays None).

        Raises:
            PermanentError: it breaks the rule (the message names the field and why).
        """
        if value is None:
            return None
        if not isinstance(value, str):
            raise PermanentError(f"{self.name} must be a string, not {type(value).__name__}")
        problem = self.problem(value)
        if problem is not None:
            raise PermanentError(problem)
        return value


DOC_ID = Field("document id", MAX_DOC_ID)
NAME = Field("name", MAX_NAME)
CLIENT_TOKEN = Field("client token", MAX_CLIENT_TOKEN, single_line=True)
MODEL = Field("model", MAX_MODEL, single_line=True)
NOTIFY_URL = Field("notify URL", MAX_URL, single_line=True)
FIELD_NAME = Field("field name", MAX_FIELD_NAME, single_line=True)


def filter_value(name: str, value: str | None) -> str | None:
    """An exact-match filter (``text``, ``type``, ``doc``) checked like a stored value.

    Raises:
        PermanentError: NUL, a lone surrogate, or longer than :data:`MAX_FILTER`.
    """
    return Field(name, MAX_FILTER).check(value)


def min_score(value: float | None) -> float | None:
    """A least-score filter: a finite number from 0 to 1 (None: no filter).

    Raises:
        PermanentError: anything else (NaN, infinities, out of range, not a number).
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise PermanentError(f"min_score must be a number from 0 to 1, not {str(value)[:40]!r}")
    return float(value)


def is_job_id(value: str) -> bool:
    """True for a value shaped like the ids shiti gives jobs (32 lowercase hex digits); any other
    value names no job, so it is answered "not found" without a query."""
    return _JOB_ID.fullmatch(value) is not None


def safe_name(value: str | None) -> str | None:
    """A default job name derived from something the user did not type as a name (a file name,
    a text snippet): NUL, surrogates and controls become U+FFFD, cut to :data:`MAX_NAME`."""
    if value is None:
        return None
    return _CONTROL.sub("\ufffd", _NUL_OR_SURROGATE.sub("\ufffd", value))[:MAX_NAME]


_AGE = re.compile(r"^([0-9]{1,9})([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def age_seconds(value: str) -> int:
    """An age such as ``30d``, ``12h``, ``90m`` or ``3600s`` in seconds.

    Raises:
        PermanentError: not a whole number followed by s, m, h or d.
    """
    found = _AGE.match(value.strip()) if isinstance(value, str) else None
    if found is None:
        raise PermanentError(f"an age is a whole number and s, m, h or d (e.g. 30d), not {str(value)[:20]!r}")
    return int(found.group(1)) * _UNIT[found.group(2)]
