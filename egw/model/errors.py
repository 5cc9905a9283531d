"""Validation errors that name the field path and the bad value.

Every parser in ``egw.model`` reports problems as :class:`FieldError` items collected into one
:class:`ValidationError`, so a user sees every mistake at once, each as
``spec.podIpAddress: invalid value "10.0.0.0/24": must be a single host (/32 or /128)``.
Values marked secret are never echoed (``<redacted>`` is printed instead).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    path: str
    value: object
    reason: str
    secret: bool = False

    def __str__(self) -> str:
        shown = "<redacted>" if self.secret else _show(self.value)
        where = self.path or "<root>"
        return f"{where}: invalid value {shown}: {self.reason}"


def _show(value: object) -> str:
    if isinstance(value, str):
        text = value if len(value) <= 300 else value[:297] + "..."
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    text = repr(value)
    return text if len(text) <= 300 else text[:297] + "..."


class ValidationError(ValueError):
    """One or more invalid fields; ``errors`` lists them in input order."""

    def __init__(self, errors: list[FieldError] | tuple[FieldError, ...], kind: str = "") -> None:
        self.errors = tuple(errors)
        self.kind = kind
        head = f"invalid {kind}: " if kind else ""
        super().__init__(head + "; ".join(str(e) for e in self.errors))

    @classmethod
    def single(cls, path: str, value: object, reason: str, *, secret: bool = False) -> ValidationError:
        return cls([FieldError(path, value, reason, secret)])
