"""JSON log lines (one object per line) carrying the request id."""

from __future__ import annotations

import atexit
import contextlib
import logging
import logging.handlers
import queue
import sys
import threading
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from app.kit.context import request_id_var

_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "color_message", "request_id"}
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        # Set on the record when it was queued (the context variable is the caller thread's).
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id is not None:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:  # rendered when the record was queued
            entry["exception"] = record.exc_text
        return orjson.dumps(entry, default=str).decode()


class _Enqueue(logging.handlers.QueueHandler):
    """Hands records to the writer thread, with what only this thread knows resolved now:
    the message, the request id and the traceback (as text, which the formatter prints)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record.request_id = request_id_var.get()
        record.message = record.getMessage()
        record.msg, record.args = record.message, None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        return record


class LogWriter:
    """Writes queued records from a thread of its own, all that are waiting in one write.

    Under load the lines of many requests go out in one system call instead of one each.
    """

    _BATCH = 512

    def __init__(
        self,
        records: queue.SimpleQueue[logging.LogRecord | None],
        stream: TextIO,
        formatter: logging.Formatter,
    ) -> None:
        self._records = records
        self._stream = stream
        self._formatter = formatter
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="crm-log-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued and stop; a second call (at exit) does nothing."""
        if self._thread is not None:
            self._records.put(None)
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        stopping = False
        while not stopping:
            waiting = [self._records.get()]
            while len(waiting) < self._BATCH:
                try:
                    waiting.append(self._records.get_nowait())
                except queue.Empty:
                    break
            lines = []
            for record in waiting:
                if record is None:
                    stopping = True
                else:
                    lines.append(self._line(record))
            if lines:
                with contextlib.suppress(OSError, ValueError):  # a closed or full stream
                    self._stream.write("\n".join(lines) + "\n")
                    self._stream.flush()

    def _line(self, record: logging.LogRecord) -> str:
        try:
            return self._formatter.format(record)
        except Exception:  # a bad record must not stop the writer or lose the others
            return f"unformattable log record from {record.name}: {record.msg!r}"


def configure_logging(level: str, fmt: str) -> LogWriter:
    """Log lines are written by a thread of their own, so a request never waits on stderr
    (an access-log line per request would otherwise be a blocking write on the event loop)."""
    formatter = (
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    records: queue.SimpleQueue[logging.LogRecord | None] = queue.SimpleQueue()
    listener = LogWriter(records, sys.stderr, formatter)
    listener.start()
    atexit.register(listener.stop)
    # Record fields no line shows: each costs a lookup per record.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [_Enqueue(records)]
    root.setLevel(level)
    # uvicorn's own access log would duplicate ours; its error log goes through the root.
    logging.getLogger("uvicorn.access").handlers[:] = []
    logging.getLogger("uvicorn.access").propagate = False
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    return listener
