"""What a unit of work sees of the database, the same on SQLite and PostgreSQL.

- Placeholders are `?`, positional. (The PostgreSQL connection rewrites them.)
- Rows read by index and by column name (`row[0]`, `row["id"]`, `dict(row)`).
- Booleans go in as 0 and 1, and come back as integers; times are ISO 8601 UTC text
  (`storage.clock`), so they compare as text on both.
- An insert that needs the new row's id says `RETURNING id`.
- Where the two SQL dialects differ, a store takes the fragment from `Dialect`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class Row(Protocol):
    def __getitem__(self, key: int | str, /) -> Any: ...
    def keys(self) -> list[str]: ...
    def __iter__(self) -> Iterator[Any]: ...
    def __len__(self) -> int: ...


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Cursor: ...
    def executemany(self, sql: str, params: Sequence[Sequence[Any]], /) -> Cursor: ...


@dataclass(frozen=True)
class Dialect:
    name: str
    # `column IN (<json_values>)` with one `?`: the values of a JSON array of strings,
    # so that a list of any length is one parameter.
    json_values: str
    # Appended to a SELECT that reads a row in order to change it: on PostgreSQL the row
    # stays locked until the commit, so another node cannot act on the same row meanwhile.
    # (SQLite has one writer: BEGIN IMMEDIATE already serialises.)
    for_update: str
    # Appended to a SELECT ... FOR UPDATE of rows to claim: rows another node is claiming
    # at that moment are passed over instead of waited for.
    skip_locked: str


ALL_ROWS = 2**63 - 1  # the largest LIMIT both accept: SQLite's -1 is an error on PostgreSQL


def row_limit(limit: int) -> int:
    """The value for `LIMIT ?`: a negative limit (all rows) becomes ALL_ROWS."""
    return ALL_ROWS if limit < 0 else limit
