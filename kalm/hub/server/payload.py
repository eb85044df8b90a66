"""Typed reading of request bodies: JSON that is valid but of the wrong shape gets a 400, never a 500.

Every route reads its JSON fields through these helpers, so that a string where an object belongs, a
list where a path belongs, an integer where base64 belongs, invalid base64 or a 100,000-deep array is
refused with a message naming the field, instead of raising deep inside the store.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from kalm.hub.server.validate import bad_request

_MISSING = object()


def parse_json(raw: bytes, what: str) -> Any:
    """Decode ``raw`` as JSON (UTF-8); 400 naming ``what`` when it is not, or is nested too deeply."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise bad_request(f"{what} is nested too deeply") from None
    except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
        raise bad_request(f"{what} is not valid JSON") from None


def as_object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_request(f"{what} must be a JSON object, not {_kind(value)}")
    return value


def text(data: dict[str, Any], key: str, what: str, default: str | None = None) -> str:
    """The string field ``key`` (``default`` when absent or null; 400 when required or of another type)."""
    value = data.get(key, _MISSING)
    if value is _MISSING or value is None:
        if default is None:
            raise bad_request(f"{what}: field {key!r} is required")
        return default
    if not isinstance(value, str):
        raise bad_request(f"{what}: field {key!r} must be a string, not {_kind(value)}")
    return value


def optional_text(data: dict[str, Any], key: str, what: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise bad_request(f"{what}: field {key!r} must be a string, not {_kind(value)}")
    return value


def integer(data: dict[str, Any], key: str, what: str, default: int | None = None) -> int:
    """The non-negative integer field ``key`` (booleans and floats are refused)."""
    value = data.get(key)
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise bad_request(f"{what}: field {key!r} must be a non-negative integer, not {_kind(value)}")
    return value


def listing(data: dict[str, Any], key: str, what: str) -> list[Any]:
    """The list field ``key`` (empty when absent)."""
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad_request(f"{what}: field {key!r} must be a list, not {_kind(value)}")
    return value


def base64_bytes(data: dict[str, Any], key: str, what: str) -> bytes:
    """The base64 string field ``key``, decoded strictly (400 for other characters or bad padding)."""
    encoded = text(data, key, what, default="")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(f"{what}: field {key!r} is not valid base64") from None


def query_flag(value: str | None) -> bool:
    """A boolean query parameter as the clients send them (``1``, ``true``, ``True``)."""
    return (value or "").lower() in ("1", "true", "yes")


def _kind(value: Any) -> str:
    names = {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)
