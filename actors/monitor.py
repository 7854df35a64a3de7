"""Monitor: the HTTP monitoring port (`-m`/`http_port`), served with gevent's WSGI server.

This is the first cut: `/` (index), `/healthz`, `/varz` (identity, limits and true counters),
`/connz` (open connections, basic fields), `/subsz` (counts), `/actorz` (the live supervisor
tree) and `/configz` (the running options). Handlers run on the WSGI server's greenlets and gather data from the actors
that own it by asking them, never by reading their state.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import time
from urllib.parse import parse_qs

from gevent.pywsgi import WSGIServer

from .runtime import Actor, CrashRequest, registry

log = logging.getLogger("actor_nats")

ENDPOINTS = ["varz", "connz", "subsz", "healthz", "actorz", "configz"]


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06dZ" % int((t % 1) * 1e6)


def _ask(path: str, message, timeout: float = 2.0):
    ref = registry.ref(path)
    if ref is None:
        return None
    try:
        return ref.ask(message, timeout=timeout)
    except Exception:
        return None


class Monitor(Actor):
    kind = "monitor"

    def __init__(self, path, parent, child_id, ctx, restarted=False):
        super().__init__(path, parent, child_id)
        self.ctx = ctx
        self.server = None

    def describe(self) -> dict:
        return {"http_port": self.ctx.options.http_port}

    def started(self) -> None:
        self.server = WSGIServer(self.ctx.http_sock, self.app, log=None, error_log=None)
        self.server.start()

    def cleanup(self) -> None:
        if self.server is not None:
            # stop serving but keep the bound socket: a restarted Monitor serves on it again
            self.server.stop_accepting()
            self.server = None

    def handle(self, message):
        return super().handle(message)

    # -- WSGI -------------------------------------------------------------------------------

    def app(self, environ, start_response):
        path = environ.get("PATH_INFO", "/").rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        try:
            if path == "/":
                body = "<html><body>" + "".join(
                    f'<a href="./{e}">{e}</a><br/>' for e in ENDPOINTS) + "</body></html>"
                start_response("200 OK", [("Content-Type", "text/html")])
                return [body.encode()]
            handler = getattr(self, "ep_" + path.strip("/").replace("/", "_"), None)
            if handler is None:
                start_response("404 Not Found", [("Content-Type", "text/plain")])
                return [b"404 page not found\n"]
            status, data = handler(query)
        except Exception as e:  # a monitoring bug must not take the monitor down
            log.error("monitor %s: %s", path, e)
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [str(e).encode()]
        start_response(status, [("Content-Type", "application/json"),
                                ("Access-Control-Allow-Origin", "*")])
        return [json.dumps(data, indent=2).encode()]

    def ep_healthz(self, query):
        return "200 OK", {"status": "ok"}

    def _clients(self) -> list:
        return _ask("/server/clients", ("refs",)) or []

    def _conns(self) -> list:
        infos = []
        for ref in self._clients():
            try:
                infos.append(ref.ask(("connz", None), timeout=1.0))
            except Exception:
                pass
        return [i for i in infos if i]

    def ep_varz(self, query):
        o = self.ctx.options
        now = time.time()
        conns = self._conns()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        st = self.ctx.stats
        data = {
            "server_id": self.ctx.server_id, "server_name": self.ctx.server_name,
            "version": self.ctx.info_base["version"], "proto": 1, "go": self.ctx.info_base["go"],
            "host": o.host, "port": self.ctx.port, "max_connections": o.max_connections,
            "max_subscriptions": o.max_subscriptions, "ping_interval": int(o.ping_interval * 1e9),
            "ping_max": o.ping_max, "http_host": o.http_host or o.host, "http_port": o.http_port,
            "max_control_line": o.max_control_line, "max_payload": o.max_payload,
            "max_pending": o.max_pending, "write_deadline": int(o.write_deadline * 1e9),
            "start": _iso(self.ctx.start_time), "now": _iso(now),
            "uptime": f"{int(now - self.ctx.start_time)}s",
            "mem": _rss(), "cores": os.cpu_count(),
            "cpu": 0.0, "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "connections": len(conns), "total_connections": st.total_connections,
            "in_msgs": sum(c["in_msgs"] for c in conns) + st.closed_in_msgs,
            "out_msgs": sum(c["out_msgs"] for c in conns) + st.closed_out_msgs,
            "in_bytes": sum(c["in_bytes"] for c in conns) + st.closed_in_bytes,
            "out_bytes": sum(c["out_bytes"] for c in conns) + st.closed_out_bytes,
            "slow_consumers": st.slow_consumers, "stale_connections": st.stale_connections,
            "subscriptions": sum(c["subscriptions"] for c in conns),
            "config_load_time": _iso(self.ctx.start_time),
        }
        return "200 OK", data

    def ep_connz(self, query):
        conns = sorted(self._conns(), key=lambda c: c["cid"])
        now = time.time()
        for c in conns:
            c["start"] = _iso(c["start"])
            c["last_activity"] = _iso(c["last_activity"])
            c["uptime"] = f"{int(c['uptime'])}s"
            c["idle"] = f"{int(c['idle'])}s"
            if not query.get("subs"):
                c.pop("subscriptions_list", None)
        return "200 OK", {"server_id": self.ctx.server_id, "now": _iso(now),
                          "num_connections": len(conns), "total": len(conns), "offset": 0,
                          "limit": 1024, "connections": conns}

    def ep_subsz(self, query):
        total = 0
        for path in self.ctx.shards.paths:
            r = _ask(path, ("subsz",))
            if r:
                total += len({id(s) for s in r["subs"]})
        return "200 OK", {"server_id": self.ctx.server_id, "now": _iso(time.time()),
                          "num_subscriptions": total}

    def ep_configz(self, query):
        """The running options (actor-nats' own endpoint; the reference has none)."""
        from dataclasses import asdict

        from ..config.loader import digest

        o = self.ctx.options
        opts = {k: v for k, v in asdict(o).items() if k != "explicit"}
        return "200 OK", {"server_id": self.ctx.server_id, "now": _iso(time.time()),
                          "config_file": o.config_file,
                          "config_digest": digest(o.config_file) if o.config_file else "",
                          "options": opts}

    def ep_actorz_kill(self, query):
        """Crash the actor at `path` as a real fault would (off unless debug.allow_kill)."""
        if not self.ctx.options.allow_kill:
            return "403 Forbidden", {"error": "kill is disabled: enable it with debug { allow_kill: true }"}
        path = query.get("path", "")
        ref = registry.ref(path)
        if ref is None:
            return "404 Not Found", {"error": f"no actor at {path!r}"}
        reason = query.get("reason") or "killed on purpose"
        log.warning("Killing actor %s on request: %s", path, reason)
        ref.tell(CrashRequest(reason))
        return "200 OK", {"killed": path, "reason": reason}

    def ep_actorz(self, query):
        return "200 OK", {"server_id": self.ctx.server_id, "now": _iso(time.time()),
                          "actors": actor_tree()}


def actor_tree() -> list:
    now = time.time()
    out = []
    for e in registry.entries():
        item = {"path": e.path, "kind": e.kind, "parent": e.parent,
                "state": "running" if e.ref.is_alive() else "stopped",
                "mailbox": e.ref.actor_inbox.qsize(), "received": e.ref.actor_inbox.received,
                "restarts": e.restarts, "age": round(now - e.started, 3)}
        item.update(e.info)
        out.append(item)
    return out


def _rss() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
