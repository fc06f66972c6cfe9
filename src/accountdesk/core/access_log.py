"""The server's logging: uvicorn's, with an access log line that costs little to write (one per request)."""

from __future__ import annotations

import copy
import logging
from http import HTTPStatus
from typing import Any

from uvicorn.config import LOGGING_CONFIG

# "201 Created", as uvicorn's access log says it; an unknown status is said alone, as there
STATUSES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}


class AccessFormatter(logging.Formatter):
    """uvicorn's access line without its colours, `INFO:     client - "METHOD path HTTP/x" status`, made from the
    record's arguments directly (uvicorn.logging.AccessFormatter copies the record and formats it twice)."""

    def format(self, record: logging.LogRecord) -> str:
        client, method, path, version, status = record.args  # type: ignore[misc]  # uvicorn's access call
        said = STATUSES.get(status) or f"{status} "
        return f'{record.levelname + ":":9} {client} - "{method} {path} HTTP/{version}" {said}'


def lighter_records() -> None:
    """Log records without what no line of the server shows: the caller's file and line, the thread's and the
    process's names (the logging HOWTO's "Optimization"), which each record, one per request, would look up."""
    logging._srcfile = None  # type: ignore[attr-defined]  # the HOWTO's way
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False


def server_logging() -> dict[str, Any]:
    """uvicorn's logging configuration with our access formatter."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["access"] = {"()": f"{__name__}.{AccessFormatter.__name__}"}
    return config
