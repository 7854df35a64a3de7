"""The client-protocol error catalogue: every `-ERR '...'` text the server sends, and whether the
connection is closed after it.

The strings are the reference server's, byte for byte (reference/NATS.md §1.5), including its
inconsistent capitalisation. Nothing here does I/O; `err_line()` only formats the frame.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """The peer broke the protocol. `text` is sent as `-ERR 'text'` unless it is None (the
    reference closes some connections silently); `close` says whether the connection ends."""

    def __init__(self, text: str | None, close: bool = True, reason: str = "Protocol Violation",
                 detail: str | None = None):
        super().__init__(text or reason)
        self.text = text
        self.close = close
        self.reason = reason
        self.detail = detail  # logged at ERR, as the reference logs e.g. unsupported headers


UNKNOWN_PROTOCOL = "Unknown Protocol Operation"
AUTH_VIOLATION = "Authorization Violation"
AUTH_TIMEOUT = "Authentication Timeout"
MAX_PAYLOAD = "Maximum Payload Violation"
MAX_CONTROL_LINE = "maximum control line exceeded"
MAX_CONNECTIONS = "maximum connections exceeded"
MAX_SUBSCRIPTIONS = "maximum subscriptions exceeded"
INVALID_SUBJECT = "Invalid Subject"
INVALID_PUBLISH_SUBJECT = "Invalid Publish Subject"
STALE_CONNECTION = "Stale Connection"
INVALID_CLIENT_PROTOCOL = "invalid client protocol"
NO_RESPONDERS_NEEDS_HEADERS = "no responders requires headers support"


def err_line(text: str) -> bytes:
    return b"-ERR '" + text.encode() + b"'\r\n"


def parse_error() -> ProtocolError:
    return ProtocolError(UNKNOWN_PROTOCOL, close=True, reason="Protocol Violation")


def silent_close(reason: str = "Protocol Violation") -> ProtocolError:
    """Wrong argument counts or sizes: the reference closes without an -ERR (it only logs)."""
    return ProtocolError(None, close=True, reason=reason)
