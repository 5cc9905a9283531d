"""WireGuard keys: the 44-character standard base64 text of 32 raw bytes.

Public keys may be echoed in errors; private keys never are (``secret=True``).
"""

from __future__ import annotations

import base64
import binascii
import re

from egw.model.errors import ValidationError

KEY_LEN = 32
# 42 free characters, then one whose low two bits are zero (32 bytes leave 2 padding bits), then "=".
KEY_PATTERN = r"^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$"
KEY_MESSAGE = "must be a WireGuard key: 44 characters of standard base64 encoding 32 bytes"
_KEY_RE = re.compile(KEY_PATTERN)


def parse_key(text: object, path: str = "key", *, secret: bool = False) -> bytes:
    """Return the 32 raw bytes of a key in WireGuard text form, or raise ValidationError."""
    if not isinstance(text, str):
        raise ValidationError.single(path, text, "must be a string", secret=secret)
    if not _KEY_RE.fullmatch(text):
        raise ValidationError.single(
            path,
            text,
            KEY_MESSAGE,
            secret=secret,
        )
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error as exc:  # unreachable after the pattern, kept as a guard
        raise ValidationError.single(path, text, "not valid base64", secret=secret) from exc
    if len(raw) != KEY_LEN:
        raise ValidationError.single(path, text, "must decode to 32 bytes", secret=secret)
    return raw


def format_key(raw: bytes) -> str:
    if len(raw) != KEY_LEN:
        raise ValueError(f"a WireGuard key has 32 bytes, got {len(raw)}")
    return base64.b64encode(raw).decode("ascii")


def is_key(text: object) -> bool:
    return isinstance(text, str) and _KEY_RE.fullmatch(text) is not None
