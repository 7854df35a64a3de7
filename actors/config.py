"""Config: the actor that holds the running options and applies reloads.

A reload (SIGHUP, `--signal reload`) re-reads the config file, re-applies the command-line
flags on top (flags win, as in the reference), computes which options changed, and either
applies all of them or refuses all of them with the reference's message
`config reload not supported for <Field>: old=<v>, new=<v>` (the table is config/reload.py). Applying means routing each
change to the actor that owns it: limits to every Client, logging to the logger. A refused or
failed reload leaves the old options running. A restarted Config actor starts from the last
good options kept in the context.
"""

from __future__ import annotations

import logging
import random
import time

import pykka

from ..config import reload as reload_rules
from ..config.loader import digest
from .runtime import Actor, registry, tell

log = logging.getLogger("actor_nats")

class Config(Actor):
    kind = "config"

    def __init__(self, path, parent, child_id, ctx, restarted=False):
        super().__init__(path, parent, child_id)
        self.ctx = ctx

    def describe(self) -> dict:
        return {"config_file": self.ctx.options.config_file}

    def handle(self, message):
        kind = message[0]
        if kind == "get":
            return self.ctx.options
        if kind == "reload":
            return self.reload()
        return super().handle(message)

    def reload(self) -> tuple[bool, str]:
        if not self.ctx.options.config_file:
            msg = "can only reload config when a file is provided using -c or --config"
            log.error("Failed to reload server configuration: %s", msg)
            return False, msg
        try:
            new = self.ctx.load_options()
        except Exception as e:  # a bad file must never take the server down
            log.error("Failed to reload server configuration: %s", e)
            return False, str(e)
        changes = reload_rules.diff(self.ctx.options, new)
        refused = reload_rules.refused(changes)
        if refused is not None:
            log.error("Failed to reload server configuration: %s", refused.refusal())
            return False, refused.refusal()
        old = self.ctx.options
        self.ctx.options = new
        # the reference logs these two on every reload, then each change, then applies the
        # logging changes (so a `logtime = false` line still has its timestamp)
        for line in reload_rules.always_lines(old, new):
            log.info("%s", line)
        for change in changes:
            for line in change.applied_lines():
                log.info("%s", line)
        self._apply(changes, new, old)
        self.ctx.stats.config_load_time = time.time()
        log.info("Reloaded server configuration (%s)", digest(new.config_file))
        return True, ", ".join(c.name for c in changes) or "nothing changed"

    def _apply(self, changes: list, new, old) -> None:
        """Route each change to whoever owns it: the logger, the clients, the context."""
        names = {c.name for c in changes}
        if "max_connections" in names and new.max_connections < old.max_connections:
            self._trim_connections(new.max_connections)
        if names & {"debug", "trace", "logtime", "logtime_utc", "log_file"}:
            from . import log as nlog

            nlog.setup(new.debug, new.trace, new.logtime, new.logtime_utc, new.log_file)
        if names & {"client_advertise", "max_payload", "auth"}:
            self.ctx.build_info()  # auth_required in the INFO of new connections
        if names & {"pid_file", "ports_file_dir"}:
            self.ctx.write_files()
        if "accounts" in names:
            from .accounts import AccountsTable

            self.ctx.accounts = AccountsTable(new)
            tell("/server/accounts", ("options", new))
        # Every reload, not only auth changes: each Client re-checks its own credentials
        # against `new.auth` in its own actor (the reference re-runs its auth check on every
        # reload too, and closes a login whose user is no longer listed even then).
        for entry in registry.children("/server/clients"):
            try:
                entry.ref.tell(("options", new))
            except pykka.ActorDeadError:
                pass

    def _trim_connections(self, limit: int) -> None:
        """A lowered max_connections closes random connections above it, as the reference."""
        entries = registry.children("/server/clients")
        excess = len(entries) - limit
        if excess <= 0:
            return
        for entry in random.sample(entries, excess):
            try:
                entry.ref.tell(("kick", "maximum connections exceeded"))
            except pykka.ActorDeadError:
                pass
        log.info("Closed %d connections to fall within max_connections", excess)
