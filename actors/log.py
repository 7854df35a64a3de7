"""Logging in the reference's format: `[pid] yyyy/mm/dd hh:mm:ss.uuuuuu [INF] message`.

Levels print as INF, DBG, TRC, WRN, ERR, FTL. `-T=false` drops the timestamp, `--logtime_utc`
prints it in UTC, `-l FILE` writes to a file (reopened on SIGUSR1), `-D` enables DBG and `-V`
TRC. Client libraries' test helpers and deployment scripts wait for lines such as
`Server is ready`, so those are printed exactly as the reference prints them.
"""

from __future__ import annotations

import logging
import os
import sys
import time

TRACE = 5
logging.addLevelName(TRACE, "TRACE")
FATAL = 60
logging.addLevelName(FATAL, "FATAL")

_TAGS = {TRACE: "TRC", logging.DEBUG: "DBG", logging.INFO: "INF", logging.WARNING: "WRN",
         logging.ERROR: "ERR", logging.CRITICAL: "FTL", FATAL: "FTL"}

logger = logging.getLogger("actor_nats")


class NatsFormatter(logging.Formatter):
    def __init__(self, logtime: bool = True, utc: bool = False):
        super().__init__()
        self.logtime = logtime
        self.utc = utc
        self.pid = os.getpid()

    def format(self, record: logging.LogRecord) -> str:
        tag = _TAGS.get(record.levelno, "INF")
        msg = record.getMessage()
        if record.exc_info and record.levelno >= logging.ERROR:
            msg += "\n" + self.formatException(record.exc_info)
        if not self.logtime:
            return f"[{self.pid}] [{tag}] {msg}"
        t = record.created
        tm = time.gmtime(t) if self.utc else time.localtime(t)
        stamp = time.strftime("%Y/%m/%d %H:%M:%S", tm) + ".%06d" % int((t % 1) * 1_000_000)
        return f"[{self.pid}] {stamp} [{tag}] {msg}"


class _ReopenableFileHandler(logging.FileHandler):
    def reopen(self) -> None:
        self.acquire()
        try:
            if self.stream:
                self.stream.close()
            self.stream = self._open()
        finally:
            self.release()


def setup(debug: bool = False, trace: bool = False, logtime: bool = True, utc: bool = False,
          log_file: str = "") -> logging.Handler:
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    handler: logging.Handler
    if log_file:
        handler = _ReopenableFileHandler(log_file)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(NatsFormatter(logtime, utc))
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(TRACE if trace else logging.DEBUG if debug else logging.INFO)
    # pykka logs crashes itself at ERROR with a traceback (shown with -D); our supervisors log
    # them once, briefly
    pyk = logging.getLogger("pykka")
    pyk.handlers = [handler] if (debug or trace) else []
    pyk.propagate = False
    pyk.setLevel(logging.ERROR if (debug or trace) else logging.CRITICAL + 1)
    return handler


def reopen() -> None:
    for h in logger.handlers:
        if isinstance(h, _ReopenableFileHandler):
            h.reopen()


def fatal(msg: str, *args) -> None:
    logger.log(FATAL, msg, *args)
