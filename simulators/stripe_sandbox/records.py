"""`Records`: the account's records by id, remembering which ones may have changed.

A record can only be changed through a reference to it, and the account gets its
references by looking records up by id. So `Records` notes every id stored or looked up
(`records[id]`, `records.get(id)`) in `touched`, in the order first touched: the state
file re-encodes those records at its next write and stores the ones whose encoding
changed. Iterating (`values()`, `items()`) and `peek(id)` note nothing: they are for
reading many records at once (lists, the sweeper's scan, the ledger); code that changes
a record reached that way must look it up by id first, or `touch()` it.

Records are never removed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NoReturn, TypeVar

V = TypeVar("V")


class Records(dict[str, V]):
    __slots__ = ("touched",)

    def __init__(self) -> None:
        super().__init__()
        # Ids stored or looked up since the state file last took them (an ordered set).
        self.touched: dict[str, None] = {}

    def __getitem__(self, key: str) -> V:
        value = dict.__getitem__(self, key)
        self.touched[key] = None
        return value

    def get(self, key: str, default: Any = None) -> Any:
        if dict.__contains__(self, key):
            self.touched[key] = None
            return dict.__getitem__(self, key)
        return default

    def __setitem__(self, key: str, value: V) -> None:
        dict.__setitem__(self, key, value)
        self.touched[key] = None

    def setdefault(self, key: str, default: Any = None) -> Any:
        if not dict.__contains__(self, key):
            self[key] = default
        return self[key]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def peek(self, key: str) -> V:
        """The record, for reading only: not noted as touched."""
        return dict.__getitem__(self, key)

    def touch(self, key: str) -> None:
        """Note a record changed through a reference not obtained by id."""
        if dict.__contains__(self, key):
            self.touched[key] = None

    def load(self, items: Iterable[tuple[str, V]]) -> None:
        """Replace every record by `items` (as stored): nothing is touched."""
        dict.clear(self)
        for key, value in items:
            dict.__setitem__(self, key, value)
        self.touched.clear()

    def _removed(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("records are never removed")

    __delitem__ = pop = popitem = clear = _removed  # type: ignore[assignment]
