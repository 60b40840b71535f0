"""Typed reading of decoded form parameters, with Stripe's error messages and params.

Every reader knows the bracket path of the hash it reads (`line_items[0][price_data]`),
so an error names the exact parameter, as Stripe's `error.param` does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .errors import invalid_request, invalid_value, missing_param, unknown_param, unsupported_param

METADATA_MAX_KEYS = 50
METADATA_MAX_KEY_LENGTH = 40
METADATA_MAX_VALUE_LENGTH = 500


class Reader:
    """One hash of parameters."""

    def __init__(self, data: Any, path: str = "") -> None:
        if not isinstance(data, dict):
            raise invalid_request(f"Invalid hash: {path}", param=path or None)
        self.data: dict[str, Any] = data
        self.path = path

    def name(self, key: str) -> str:
        return f"{self.path}[{key}]" if self.path else key

    def has(self, key: str) -> bool:
        return self.data.get(key) not in (None, "")

    def allow(self, supported: Iterable[str], unsupported: Iterable[str] = ()) -> None:
        """Refuse parameters Stripe does not know, and real ones the sandbox does not model."""
        supported, unsupported = set(supported), set(unsupported)
        for key in self.data:
            if key in supported:
                continue
            if key in unsupported:
                raise unsupported_param(self.name(key))
            raise unknown_param(self.name(key))

    def _raw(self, key: str, required: bool) -> Any:
        value = self.data.get(key)
        # An empty value means "not set" (Stripe uses it to unset optional fields).
        if value is None or value == "":
            if required:
                raise missing_param(self.name(key))
            return None
        return value

    def string(
        self,
        key: str,
        *,
        required: bool = False,
        choices: Iterable[str] | None = None,
        max_length: int = 5000,
    ) -> str | None:
        value = self._raw(key, required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise invalid_value(self.name(key), f"Invalid string: {self.name(key)}")
        if choices is not None:
            options = list(choices)
            if value not in options:
                raise invalid_request(
                    f"Invalid {self.name(key)}: must be one of {', '.join(options)}",
                    param=self.name(key),
                )
        if len(value) > max_length:
            raise invalid_value(
                self.name(key),
                f"Invalid string: {value[:20]}...; must be at most {max_length} characters",
            )
        return value

    def integer(
        self,
        key: str,
        *,
        required: bool = False,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        value = self._raw(key, required)
        if value is None:
            return None
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise invalid_value(
                self.name(key), f"Invalid integer: {value}", code="parameter_invalid_integer"
            ) from None
        if minimum is not None and number < minimum:
            raise invalid_value(
                self.name(key),
                f"This value must be greater than or equal to {minimum}.",
                code="parameter_invalid_integer",
            )
        if maximum is not None and number > maximum:
            raise invalid_value(
                self.name(key),
                f"This value must be less than or equal to {maximum}.",
                code="parameter_invalid_integer",
            )
        return number

    def boolean(self, key: str) -> bool:
        """A boolean sent as `true`/`false` (the SDK's encoding); absent is False."""
        return self.string(key, choices=("true", "false")) == "true"

    def hash(self, key: str, *, required: bool = False) -> Reader | None:
        value = self._raw(key, required)
        return None if value is None else Reader(value, self.name(key))

    def array(self, key: str, *, required: bool = False) -> list[Any] | None:
        """A list, sent as `key[0]=..` (the SDK) or `key[]=..` (curl)."""
        value = self._raw(key, required)
        if value is None:
            return None
        if not isinstance(value, dict) or not all(k.isdigit() for k in value):
            raise invalid_request(f"Invalid array: {self.name(key)}", param=self.name(key))
        return [value[k] for k in sorted(value, key=int)]

    def hashes(self, key: str, *, required: bool = False) -> list[Reader] | None:
        items = self.array(key, required=required)
        if items is None:
            return None
        return [Reader(item, f"{self.name(key)}[{index}]") for index, item in enumerate(items)]

    def strings(self, key: str) -> list[str] | None:
        items = self.array(key)
        if items is None:
            return None
        for index, item in enumerate(items):
            if not isinstance(item, str):
                raise invalid_request(
                    f"Invalid string: {self.name(key)}[{index}]", param=f"{self.name(key)}[{index}]"
                )
        return items

    def metadata(self, key: str = "metadata") -> dict[str, str] | None:
        """A metadata hash: None if absent, {} for `metadata=` (unset all).

        Keys whose value is empty stay in the result as "" so an update can unset them.
        """
        if key not in self.data:
            return None
        value = self.data[key]
        if value == "":
            return {}
        if not isinstance(value, dict):
            raise invalid_request(f"Invalid hash: {self.name(key)}", param=self.name(key))
        if len(value) > METADATA_MAX_KEYS:
            raise invalid_request(
                f"Invalid {self.name(key)}: metadata can have at most {METADATA_MAX_KEYS} keys.",
                param=self.name(key),
            )
        for meta_key, meta_value in value.items():
            param = f"{self.name(key)}[{meta_key}]"
            if not isinstance(meta_value, str):
                raise invalid_request(f"Invalid value type: {param} must be a string", param=param)
            if len(meta_key) > METADATA_MAX_KEY_LENGTH:
                raise invalid_request(
                    f"Metadata keys can have up to {METADATA_MAX_KEY_LENGTH} characters.",
                    param=param,
                )
            if len(meta_value) > METADATA_MAX_VALUE_LENGTH:
                raise invalid_request(
                    f"Metadata values can have up to {METADATA_MAX_VALUE_LENGTH} characters.",
                    param=param,
                )
        return dict(value)


def merge_metadata(current: dict[str, str], update: dict[str, str] | None) -> dict[str, str]:
    """Stripe's update rule: `metadata=` clears all, `metadata[k]=` clears one key."""
    if update is None:
        return current
    if not update:
        return {}
    merged = dict(current)
    for key, value in update.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged
