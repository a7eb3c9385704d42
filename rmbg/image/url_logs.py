"""Log lines without URL queries: a query may hold a signed token (an S3 or CDN signature).

httpx logs every request it sends at INFO ("HTTP Request: GET https://host/path?query ..."),
so the query of a visitor's image URL or of a hosted vendor's result URL would reach the
app's log. `hide_queries()` puts a filter on the "httpx" logger that drops the query of every
URL in its lines; rmbg calls it where it makes requests (the hosted providers' clients), never
at import, and its own fetches log URLs through rmbg.image.fetch.shown, without their query.
"""

from __future__ import annotations

import logging
import re

_QUERY = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s?#\"'<>]*)\?[^\s#\"'<>]*", re.I)


def without_queries(text: str) -> str:
    """`text` with the query of every URL in it dropped (scheme://host/path kept)."""
    return _QUERY.sub(r"\1", text)


class QueryFilter(logging.Filter):
    """Drops the queries of the URLs in a record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "?" in message:
            record.msg, record.args = without_queries(message), None
        return True


_FILTER = QueryFilter()


def hide_queries(logger: str = "httpx") -> None:
    """Put the QueryFilter on `logger` (once; a second call changes nothing)."""
    target = logging.getLogger(logger)
    if _FILTER not in target.filters:
        target.addFilter(_FILTER)
