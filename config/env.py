"""Typed readers for settings that come from the environment; bad values fail at boot."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from django.core.exceptions import ImproperlyConfigured


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


_T = TypeVar("_T")


def _env_value(name: str, default: _T, parse: Callable[[str], _T], kind: str) -> _T:
    """Return NAME read by `parse`, or `default` if it is unset or empty; `kind` names it in the error."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return parse(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be {kind}, got {value!r}") from exc


def _boolean(value: str) -> bool:
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ValueError(value)


def _items(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def env_bool(name: str, default: bool = False) -> bool:
    return _env_value(name, default, _boolean, "a boolean")


def env_int(name: str, default: int) -> int:
    return _env_value(name, default, int, "an integer")


def env_float(name: str, default: float) -> float:
    return _env_value(name, default, float, "a number")


def env_list(name: str, default: list[str]) -> list[str]:
    return _env_value(name, default, _items, "a list")


def env_secret(name: str, *, required: bool, default: str = "") -> str:
    """Read NAME, or the contents of the file named by NAME_FILE (for mounted secrets)."""
    value = os.environ.get(name)
    file_name = os.environ.get(f"{name}_FILE")
    if not value and file_name:
        value = Path(file_name).read_text().strip()
    if not value:
        if required:
            raise ImproperlyConfigured(f"{name} must be set in production")
        return default
    return value
