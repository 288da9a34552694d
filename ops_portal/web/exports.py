"""CSV downloads: streamed a row at a time as the service reads them, written by the csv module
(quoting, commas, new lines), with every cell a spreadsheet could run as a formula made text."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from itertools import chain

from flask import Response, stream_with_context

from ..domain.access import SeenEvent
from ..models import Booking
from .clock import display_zone

# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets (a tab
# or carriage return ahead of one is skipped by some of them).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

ARCHIVE_COLUMNS = (
    "Booking",
    "Status",
    "Service",
    "Customer",
    "Address",
    "Window start",
    "Window end",
    "Provider",
    "Created",
    "Last change",
)
TIMELINE_COLUMNS = (
    "Event",
    "Time",
    "What happened",
    "Action",
    "From",
    "To",
    "By",
    "Provider",
    "Reason",
    "Forced",
    "Source",
)


def spreadsheet_safe(value) -> str:
    """The cell as text; text a spreadsheet would run as a formula gets a leading quote, which
    makes it text there."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_download(filename: str, header: Sequence[str], rows: Iterable[Sequence]) -> Response:
    """A CSV file of `header` and `rows`, streamed: each row is written as it is read."""

    def lines():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for cells in chain([header], rows):
            writer.writerow([spreadsheet_safe(cell) for cell in cells])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()

    return Response(
        stream_with_context(lines()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _local(moment) -> str:
    """A time in the reader's zone, ISO 8601 with its offset: exact, and sortable as text."""
    return "" if moment is None else moment.astimezone(display_zone()).isoformat(timespec="seconds")


def archive_rows(found: Iterable[Booking]) -> Iterable[tuple]:
    for booking in found:
        yield (
            booking.id,
            booking.status.value,
            booking.service,
            booking.customer_name,
            booking.address,
            _local(booking.window_start),
            _local(booking.window_end),
            booking.provider.name if booking.provider else "",
            _local(booking.created_at),
            _local(booking.updated_at),
        )


def timeline_rows(events: Iterable[SeenEvent]) -> Iterable[tuple]:
    for event in events:
        yield (
            event.id,
            _local(event.created_at),
            event.summary,
            event.action and event.action.value,
            event.from_status and event.from_status.value,
            event.to_status and event.to_status.value,
            event.by,
            event.provider_name,
            event.reason,
            {True: "yes", False: "no"}.get(event.forced, ""),
            event.source and event.source.value,
        )
