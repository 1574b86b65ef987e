"""Problems are data: every check collects them all, then reports them at once.

A `Problem` prints as `path:line: error: message`, the format editors' tools jump to.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError

Severity = Literal["error", "warning"]
Loc = tuple[str | int, ...]


@dataclass(frozen=True, order=True)
class Problem:
    path: str
    line: int | None
    severity: Severity
    message: str

    def format(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.severity}: {self.message}"


@dataclass
class Problems:
    items: list[Problem] = field(default_factory=list)

    def add(self, path: Path | str, line: int | None, severity: Severity, message: str) -> None:
        self.items.append(Problem(str(path), line, severity, message))

    def error(self, path: Path | str, line: int | None, message: str) -> None:
        self.add(path, line, "error", message)

    def warning(self, path: Path | str, line: int | None, message: str) -> None:
        self.add(path, line, "warning", message)

    def extend(self, other: Iterable[Problem]) -> None:
        self.items.extend(other)

    def __iter__(self) -> Iterator[Problem]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.items if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.items if p.severity == "warning"]

    @property
    def has_errors(self) -> bool:
        return any(p.severity == "error" for p in self.items)

    def sorted(self) -> list[Problem]:
        """Sorted by file, then line; problems without a line come first in their file."""
        return sorted(set(self.items), key=lambda p: (p.path, p.line or 0, p.severity, p.message))


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' when a close choice exists, else ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


_MESSAGES = {
    "string_type": "must be text",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "list_type": "must be a list",
    "dict_type": "must be a mapping of keys to values",
    "model_type": "must be a mapping of keys to values",
    "model_attributes_type": "must be a mapping of keys to values",
    "date_type": "must be a date like 2025-05-14",
    "date_parsing": "must be a date like 2025-05-14",
    "date_from_datetime_parsing": "must be a date like 2025-05-14",
    "date_from_datetime_inexact": "must be a date like 2025-05-14",
    "datetime_type": "must be a date and time like 2025-05-14T17:49:00+08:00",
    "datetime_parsing": "must be a date and time like 2025-05-14T17:49:00+08:00",
    "datetime_from_date_parsing": "must be a date and time like 2025-05-14T17:49:00+08:00",
    "string_too_short": "must not be empty",
    "too_short": "must not be empty",
}


def _field_names(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The pydantic model class that owns the keys at `loc` (for 'did you mean')."""
    current: typing.Any = root
    for part in loc:
        # unwrap Optional/list/dict: a list index or dict key consumes this part
        consumed = False
        while (origin := typing.get_origin(current)) is not None:
            args = [a for a in typing.get_args(current) if a is not type(None)]
            if not args:
                return None
            if origin in (list, tuple, dict):
                current, consumed = args[-1] if origin is dict else args[0], True
                break
            current = args[0]
        if consumed:
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        by_alias = {f.alias or n: f for n, f in current.model_fields.items()}
        if part not in by_alias:
            return None
        current = by_alias[part].annotation
    while typing.get_origin(current) is not None:
        args = [a for a in typing.get_args(current) if a is not type(None)]
        current = args[-1] if args else None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def from_validation_error(
    err: ValidationError,
    model: type[BaseModel],
    path: Path | str,
    line_of: Callable[[Loc], int | None],
    prefix: Loc = (),
) -> list[Problem]:
    """Turn pydantic's errors into one Problem each, with the line of the key at fault."""
    found: list[Problem] = []
    for e in err.errors():
        loc: Loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and "[" in p))
        full = prefix + loc
        kind = e["type"]
        where = dotted(full[:-1])
        key = str(full[-1]) if full else ""
        if kind == "missing":
            message = f"missing required key '{key}'"
            if where:
                message += f" in {where}"
            line = line_of(full[:-1])
        elif kind == "extra_forbidden":
            owner = _model_at(model, loc[:-1])
            hint = did_you_mean(key, _field_names(owner)) if owner else ""
            message = f"unknown key '{key}'" + (f" in {where}" if where else "") + hint
            line = line_of(full)
        else:
            text = _MESSAGES.get(kind) or str(e["msg"])
            text = text.removeprefix("Value error, ").replace("Input should be", "must be")
            message = f"{dotted(full)}: {text}" if full else text
            line = line_of(full)
        found.append(Problem(str(path), line, "error", message))
    return found


@dataclass
class LineMap:
    """Where each key of a parsed document starts, so a problem can name its line."""

    lines: dict[Loc, int] = field(default_factory=dict)
    offset: int = 0

    def __call__(self, loc: Loc) -> int | None:
        """The line of `loc`, or of the nearest enclosing key that has one."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:end]))
            if line is not None:
                return line + self.offset
        return None
