"""The one error type of the config package: a bad config file, with where it went wrong.

Owns `ConfigError`. `str()` reads like the reference server's message for the same mistake, so
the CLI can print it after `nats-server: ` unchanged; the attributes keep the pieces apart for
callers that want them. Must not import anything from the rest of the package.

Three shapes of message exist in the reference, and `str()` produces each:
- lexer errors:            `Parse error on line 3: 'Expected value but found new line'`
- a key with no value:     `config is invalid (/etc/nats.conf:1:4)`
- a value or key problem:  `/etc/nats.conf:2:1: unknown field "foo"` (file:line:column: message)
Other parser errors (`variable reference for 'x' on line 2 can not be found`, `error parsing
include file 'a.conf', ...`) are plain text with no position in the reference; `text=` carries
that exact text while file/line/column still say where it happened.

Columns follow the reference: byte offset from the last newline before the token, so they are
0-based on line 1 and 1-based on every later line.
"""

from __future__ import annotations


class ConfigError(Exception):
    """A config file the reference would refuse; str() is the reference's wording."""

    def __init__(
        self,
        message: str,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        *,
        text: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.text = text
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.text is not None:
            return self.text
        if self.line is None:
            return self.message
        return f"{self.file or ''}:{self.line}:{self.column or 0}: {self.message}"

    def __repr__(self) -> str:
        return f"ConfigError({str(self)!r})"

    @classmethod
    def parse_error(cls, message: str, file: str | None, line: int, column: int | None = None) -> "ConfigError":
        """A lexer error: the reference reports only the line."""
        return cls(message, file, line, column, text=f"Parse error on line {line}: '{message}'")

    @classmethod
    def invalid(cls, file: str | None, line: int, column: int) -> "ConfigError":
        """A key with no value at the end of the input."""
        return cls("config is invalid", file, line, column, text=f"config is invalid ({file or ''}:{line}:{column})")

    def wrap(self, prefix: str) -> "ConfigError":
        """The same error seen from an including file or a variable reference: the reference
        prefixes the inner text; the position stays the innermost one."""
        return ConfigError(self.message, self.file, self.line, self.column, text=prefix + str(self))
