"""Config: the actor that holds the running options and applies reloads.

A reload (SIGHUP, `--signal reload`) re-reads the config file, re-applies the command-line
flags on top (flags win, as in the reference), computes which options changed, and either
applies all of them or refuses all of them with the reference's message
`config reload not supported for <option>: old=<v>, new=<v>`. Applying means routing each
change to the actor that owns it: limits to every Client, logging to the logger. A refused or
failed reload leaves the old options running. A restarted Config actor starts from the last
good options kept in the context.
"""

from __future__ import annotations

import logging
from dataclasses import fields

from .runtime import Actor, registry

log = logging.getLogger("actor_nats")

# Options that need a restart (listen sockets, identity). Everything else reloads.
NOT_RELOADABLE = {"host", "port", "http_host", "http_port", "server_name", "client_advertise",
                  "ports_file_dir", "config_file"}
_IGNORED = {"explicit"}


def diff(old, new) -> dict:
    changes = {}
    for f in fields(old):
        if f.name in _IGNORED:
            continue
        a, b = getattr(old, f.name), getattr(new, f.name)
        if a != b:
            changes[f.name] = (a, b)
    return changes


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
            msg = f"Failed to reload server configuration: {e}"
            log.error(msg)
            return False, msg
        changes = diff(self.ctx.options, new)
        refused = [k for k in changes if k in NOT_RELOADABLE]
        if refused:
            k = refused[0]
            old, nv = changes[k]
            msg = f"config reload not supported for {k}: old={old}, new={nv}"
            log.error("Failed to reload server configuration: %s", msg)
            return False, msg
        self.ctx.options = new
        self._apply(changes, new)
        if changes:
            for k, (a, b) in sorted(changes.items()):
                log.info("Reloaded: %s = %s", k, b)
        from ..config.loader import digest

        log.info("Reloaded server configuration (%s)", digest(new.config_file))
        names = ", ".join(sorted(changes)) or "nothing changed"
        return True, names

    def _apply(self, changes: dict, new) -> None:
        if changes.keys() & {"debug", "trace", "logtime", "logtime_utc", "log_file"}:
            from . import log as nlog

            nlog.setup(new.debug, new.trace, new.logtime, new.logtime_utc, new.log_file)
        for entry in registry.children("/server/clients"):
            try:
                entry.ref.tell(("options", new))
            except Exception:
                pass
