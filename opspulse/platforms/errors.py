from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


class PayloadError(Exception):
    """The payload cannot be turned into OpsPulse records; retrying will not help."""


def parse_payload(model: type[Model], payload: Any) -> Model:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        raise PayloadError(f"invalid {model.__name__}: {location}: {first['msg']}") from exc
