"""CSV exports: a listing's JSON model as columns, rows fetched in id-keyed batches and
streamed, so an export of any size runs in constant memory.

Every CSV this project writes (transactions, the audit log, owners' statements) passes each
cell through `neutralise`, so that no cell is run as a spreadsheet formula (OWASP's "CSV
injection"). The rule goes by the cell's type, never by its text:

- Text (a charger id, an id tag, a name, a detail, a date) that starts with `=`, `+`, `-`,
  `@`, a tab or a carriage return gets a leading apostrophe: a spreadsheet shows it as
  the text it is and never evaluates it. This holds for text that looks like a number too
  ("-5" as an id tag stays the text "-5").
- Numbers (the columns the JSON model types as integers: amounts, energy, ids) are written
  as they are, sign included: a negative amount stays a number a spreadsheet adds up.
  No number can carry a formula.
- Empty cells (null) stay empty. Dates are ISO 8601 text starting with a digit and are
  never changed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web
from pydantic import BaseModel

# Rows newest first, each with an "id"; `before` is the last id of the previous batch.
Fetch = Callable[[int | None, int], Awaitable[Sequence[Any]]]


def csv_columns(model: type[BaseModel]) -> list[str]:
    """The JSON listing's fields, under the same names."""
    return [field.alias or name for name, field in model.model_fields.items()]


async def csv_chunks(
    model: type[BaseModel],
    fetch: Fetch,
    convert: Callable[[Any], BaseModel],
    batch: int = 500,
) -> AsyncIterator[str]:
    """The export in chunks of CSV text (RFC 4180), the header row first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(csv_columns(model))
    before: int | None = None
    while True:
        rows = await fetch(before, batch)
        for row in rows:
            cells = convert(row).model_dump(by_alias=True).values()
            writer.writerow([neutralise(cell) for cell in cells])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < batch:
            return
        before = rows[-1]["id"]


async def stream_csv(
    request: web.Request, filename: str, chunks: AsyncIterator[str]
) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )
    response.content_type = "text/csv"
    response.charset = "utf-8"
    await response.prepare(request)
    async for chunk in chunks:
        await response.write(chunk.encode())
    await response.write_eof()
    return response


# What a spreadsheet reads as the start of a formula (OWASP's "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> object:
    """A cell a spreadsheet shows as text, never runs: text starting like a formula gets a
    leading apostrophe; numbers (negative ones too) and None are left as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value
