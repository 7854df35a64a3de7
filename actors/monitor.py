"""Monitor: the HTTP monitoring port (`-m`/`http_port`), served with gevent's WSGI server.

It answers the reference's endpoints with the reference's JSON (field names, types, omitted
empty fields, Go's time and duration encodings, the same HTTP 400 texts for bad parameters):
`/` (index), `/varz`, `/connz`, `/subsz` (alias `/subscriptionsz`), `/routez`, `/gatewayz`,
`/leafz`, `/accountz`, `/accstatz`, `/jsz`, `/healthz`; the features not built yet (routes,
gateways, leafnodes, JetStream, accounts other than `$G`) answer as the reference does when they
are not configured. actor-nats' own: `/metrics` (Prometheus text format), `/actorz` (the live
supervisor tree), `/actorz/kill`, `/configz` (the running options).

Each endpoint's data is computed by `Endpoints` (one method per endpoint, a query dict of
strings in, (status, dict) out), which the System actor (actors/system.py) calls as well to answer
`$SYS.REQ.SERVER.<id>.<ENDPOINT>` with the same dicts. Handlers run on the WSGI server's greenlets
and gather data from the actors that own it by asking them, never by reading their state: the Clients supervisor (open clients, the ring of
closed connections and their totals), each Client (`conn_info`), each Shard (its sublist). Only
server-wide counters (`ServerContext.stats`) and the registry's mailbox view are read directly.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import time
from urllib.parse import parse_qs

from gevent.pywsgi import WSGIServer

from ..protocol.subjects import subject_matches, valid_literal_subject
from .runtime import Actor, CrashRequest, registry

log = logging.getLogger("actor_nats")

GLOBAL_ACCOUNT = "$G"
DEFAULT_LIST_SIZE = 1024  # connz and subsz page size (DefaultConnListSize/DefaultSubListSize)
ASK_TIMEOUT = 2.0

# (link text, path) for the index page, in the reference's order, then actor-nats' own
INDEX = [("General", "/varz"), ("JetStream", "/jsz"), ("Connections", "/connz"),
         ("Accounts", "/accountz"), ("Account Stats", "/accstatz"),
         ("Subscriptions", "/subsz"), ("Routes", "/routez"), ("LeafNodes", "/leafz"),
         ("Gateways", "/gatewayz"), ("Health Probe", "/healthz"), ("Metrics", "/metrics"),
         ("Actors", "/actorz"), ("Running Config", "/configz")]

# Paths counted in /varz http_req_stats, as the reference counts them (/subscriptionsz is
# counted under /subsz).
COUNTED = {"/", "/varz", "/connz", "/routez", "/gatewayz", "/leafz", "/subsz", "/accountz",
           "/accstatz", "/jsz", "/healthz"}

ALIASES = {"/subscriptionsz": "/subsz"}

# connz sort options: key of the raw connection record, and whether it sorts descending
# (monitor_sort_opts.go: everything but cid/start, uptime and reason is reversed).
SORTS = {
    "cid": ("cid", False), "start": ("cid", False), "subs": ("subscriptions", True),
    "pending": ("pending_bytes", True), "msgs_to": ("out_msgs", True),
    "msgs_from": ("in_msgs", True), "bytes_to": ("out_bytes", True),
    "bytes_from": ("in_bytes", True), "last": ("last_activity", True),
    "idle": ("idle", True), "uptime": ("uptime", False), "stop": ("stop", True),
    "reason": ("reason", False), "rtt": ("rtt", True),
}

EMPTY_KIND_STATS = ("clients", "routes", "gateways", "leafs")


class BadRequest(Exception):
    """A bad query parameter: HTTP 400 with this text, as the reference writes it."""


# -- Go encodings -------------------------------------------------------------------------------

def go_time(t: float) -> str:
    """A time as Go's JSON encodes a UTC time.Time (RFC 3339, fraction without trailing zeros;
    microsecond precision, which is what the clock here gives)."""
    us = int(round(t * 1_000_000))
    secs, frac = divmod(us, 1_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    digits = f"{frac:06d}".rstrip("0")
    return f"{base}.{digits}Z" if digits else f"{base}Z"


def go_uptime(seconds: float) -> str:
    """The reference's uptime/idle format (myUptime): whole seconds, as 1y2d3h4m5s."""
    tsecs = max(int(seconds), 0)
    tmins, thrs = tsecs // 60, tsecs // 3600
    tdays = thrs // 24
    tyrs = tdays // 365
    if tyrs > 0:
        return f"{tyrs}y{tdays % 365}d{thrs % 24}h{tmins % 60}m{tsecs % 60}s"
    if tdays > 0:
        return f"{tdays}d{thrs % 24}h{tmins % 60}m{tsecs % 60}s"
    if thrs > 0:
        return f"{thrs}h{tmins % 60}m{tsecs % 60}s"
    if tmins > 0:
        return f"{tmins}m{tsecs % 60}s"
    return f"{tsecs}s"


def _fraction(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    digits = f"{frac:0{len(str(unit)) - 1}d}".rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


def go_duration(seconds: float) -> str:
    """Go's time.Duration.String() of a duration in seconds: 0s, 451µs, 1.5ms, 2s, 1m30s."""
    ns = int(round(seconds * 1e9))
    if ns == 0:
        return "0s"
    sign, u = ("-", -ns) if ns < 0 else ("", ns)
    if u < 1_000:
        text = f"{u}ns"
    elif u < 1_000_000:
        text = _fraction(u, 1_000) + "µs"
    elif u < 1_000_000_000:
        text = _fraction(u, 1_000_000) + "ms"
    else:
        hours, rest = divmod(u, 3600 * 10**9)
        mins, rest = divmod(rest, 60 * 10**9)
        secs = _fraction(rest, 10**9) + "s"
        text = (f"{hours}h{mins}m" if hours else f"{mins}m" if mins else "") + secs
    return sign + text


def go_rtt(seconds: float) -> str:
    """A connection's RTT as the reference shows it: truncated to µs between 1µs and 1ms."""
    ns = int(seconds * 1e9)
    if 1_000 < ns < 1_000_000:
        ns -= ns % 1_000
    return go_duration(ns / 1e9)


def _num(x: float):
    """A float as Go encodes a float64: integral values without a fraction."""
    return int(x) if float(x).is_integer() else x


def _go_quote(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def _param_bool(query: dict, name: str) -> bool:
    s = query.get(name, "")
    if s == "":
        return False
    if s in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if s in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise BadRequest(f"Error decoding boolean for '{name}': strconv.ParseBool: parsing "
                     f"{_go_quote(s)}: invalid syntax")


def _param_int(query: dict, name: str) -> int:
    s = query.get(name, "")
    if s == "":
        return 0
    body = s[1:] if s[:1] in "+-" else s
    if not body or not body.isascii() or not body.isdigit():
        raise BadRequest(f"Error decoding int for '{name}': strconv.Atoi: parsing "
                         f"{_go_quote(s)}: invalid syntax")
    v = int(s)
    if not -2**63 <= v < 2**63:
        raise BadRequest(f"Error decoding int for '{name}': strconv.Atoi: parsing "
                         f"{_go_quote(s)}: value out of range")
    return v


def _param_uint(query: dict, name: str) -> int:
    s = query.get(name, "")
    if s == "":
        return 0
    if not s.isascii() or not s.isdigit():
        raise BadRequest(f"Error decoding uint64 for '{name}': strconv.ParseUint: parsing "
                         f"{_go_quote(s)}: invalid syntax")
    v = int(s)
    if v >= 2**64:
        raise BadRequest(f"Error decoding uint64 for '{name}': strconv.ParseUint: parsing "
                         f"{_go_quote(s)}: value out of range")
    return v


def _param_subs(query: dict) -> str | bool:
    """connz/routez/gatewayz `subs`: a bool, or "detail" (any case)."""
    if query.get("subs", "").lower() == "detail":
        return "detail"
    return _param_bool(query, "subs")


def _param_state(query: dict) -> str:
    s = query.get("state", "")
    if s == "":
        return "open"
    low = s.lower()
    if low in ("open", "closed"):
        return low
    if low in ("any", "all"):
        return "all"
    raise BadRequest(f"Error decoding state for {s}")


def _json_body(data, indent: bool = True) -> bytes:
    text = json.dumps(data, indent=2 if indent else None, ensure_ascii=False,
                      separators=None if indent else (",", ":"))
    # Go's encoder escapes these for safe embedding in HTML
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text.encode()


def _ask(path: str, message, timeout: float = ASK_TIMEOUT):
    ref = registry.ref(path)
    if ref is None:
        return None
    try:
        return ref.ask(message, timeout=timeout)
    except Exception:
        return None


def _gather(refs: list, message, timeout: float = ASK_TIMEOUT) -> list:
    """Ask every actor in `refs` at once and collect the answers (dead ones are skipped)."""
    futures = []
    for ref in refs:
        try:
            futures.append(ref.ask(message, block=False))
        except Exception:
            pass
    deadline = time.monotonic() + timeout
    out = []
    for f in futures:
        try:
            out.append(f.get(timeout=max(deadline - time.monotonic(), 0.001)))
        except Exception:
            pass
    return [r for r in out if r]


class Monitor(Actor):
    kind = "monitor"

    def __init__(self, path, parent, child_id, ctx, restarted=False):
        super().__init__(path, parent, child_id)
        self.ctx = ctx
        self.server = None
        self.endpoints = Endpoints(ctx)

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
        path = environ.get("PATH_INFO", "/") or "/"
        query = {}
        for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items():
            query[k] = v[0]  # Go's Query().Get: the first value
        name = ALIASES.get(path, path)
        if name in COUNTED:
            stats = self.ctx.stats.http_req_stats
            stats[name] = stats.get(name, 0) + 1
        try:
            if path == "/":
                start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
                return [self.index_page().encode()]
            handler = getattr(self.endpoints, "ep_" + name.strip("/").replace("/", "_"), None) \
                if name.count("/") <= 2 else None
            if handler is None:
                start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8"),
                                                  ("X-Content-Type-Options", "nosniff")])
                return [b"404 page not found\n"]
            result = handler(query)
        except BadRequest as e:
            start_response("400 Bad Request", [("Content-Type", "text/plain; charset=utf-8")])
            return [str(e).encode()]
        except Exception as e:  # a monitoring bug must not take the monitor down
            log.error("monitor %s: %s", path, e)
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [str(e).encode()]
        if len(result) == 3:  # (status, content type, body bytes)
            status, ctype, body = result
            start_response(status, [("Content-Type", ctype), ("Access-Control-Allow-Origin", "*")])
            return [body]
        status, data = result
        start_response(status, [("Content-Type", "application/json"),
                                ("Access-Control-Allow-Origin", "*")])
        return [_json_body(data, indent=name != "/healthz")]

    def index_page(self) -> str:
        links = "\n".join(f'\t<a href=.{p}>{text}<span class="endpoint"> {p}</span></a>'
                          for text, p in INDEX)
        version = self.ctx.info_base.get("version", "")
        return ("<html lang=\"en\">\n\t<head>\n\t<title>actor-nats monitoring</title>\n"
                "\t<style type=\"text/css\">\n"
                "\t\tbody { font-family: ui-sans-serif,system-ui,sans-serif; margin-left: 32px }\n"
                "\t\ta { display:block; margin-left: 7px; padding-bottom: 6px; color: rgb(72 72 92);"
                " text-decoration: none }\n"
                "\t\t.endpoint { font-size: 12px; color: #999; font-family: monospace }\n"
                "\t</style>\n\t</head>\n\t<body>\n"
                f"\t<h3>actor-nats (NATS server v{version})</h3>\n{links}\n"
                "\t<a href=https://docs.nats.io/running-a-nats-service/nats_admin/monitoring>"
                "Help</a>\n  </body>\n</html>")

class Endpoints:
    """The data of every endpoint, as (status, dict) from a query dict of strings (HTTP's query
    parameters): the Monitor serves it over HTTP and the System actor over `$SYS` requests, so
    both give the same dicts. Methods block while they ask the actors that own the data; call
    them from a greenlet of their own (the WSGI server's, or a helper the System spawns)."""

    def __init__(self, ctx):
        self.ctx = ctx

    # -- gathering --------------------------------------------------------------------------

    def _clients_view(self, subs: bool) -> tuple[list, list, dict]:
        """(open connection records, closed records, closed totals), from one ask to the
        Clients supervisor and then one ask to each open Client."""
        view = _ask("/server/clients", ("monitor_view",)) or {"refs": [], "closed": [], "totals": {}}
        open_conns = _gather(view["refs"], ("connz", subs))
        closed_cids = {c["cid"] for c in view["closed"]}
        open_conns = [c for c in open_conns if c["cid"] not in closed_cids]
        return open_conns, view["closed"], view["totals"]

    def _index(self, account: str | None = None) -> dict:
        """The subscription index over all shards: unique subscriptions (each lives in every
        shard and counts once), inserts and removes from one shard, and matches and caches
        added up over the shards (each matches for its own publishers)."""
        unique: dict[int, object] = {}
        agg = {"num_subscriptions": 0, "num_cache": 0, "num_inserts": 0, "num_removes": 0,
               "num_matches": 0, "cache_hit_rate": 0, "max_fanout": 0, "avg_fanout": 0}
        hits = 0.0
        fanout_total = 0.0
        refs = [registry.ref(p) for p in self.ctx.shards.paths]
        ask = ("subsz",) if account is None else ("subsz", account)
        for answer in _gather([r for r in refs if r is not None], ask):
            st = answer["stats"]
            for sub in answer["subs"]:
                unique[id(sub)] = sub
            for k in ("num_cache", "num_matches"):
                agg[k] += st[k]
            for k in ("num_inserts", "num_removes"):
                agg[k] = max(agg[k], st[k])
            hits += st["cache_hit_rate"] * st["num_matches"]
            fanout_total += st["avg_fanout"] * st["num_cache"]
            agg["max_fanout"] = max(agg["max_fanout"], st["max_fanout"])
        agg["num_subscriptions"] = len(unique)
        if agg["num_matches"]:
            agg["cache_hit_rate"] = _num(round(hits) / agg["num_matches"])
        if agg["num_cache"] and fanout_total:
            agg["avg_fanout"] = _num(round(fanout_total) / agg["num_cache"])
        return {"stats": agg, "subs": list(unique.values())}

    def _subscription_count(self, account: str | None = None) -> int:
        """How many subscriptions there are, without fetching them (/varz, STATSZ)."""
        refs = [registry.ref(p) for p in self.ctx.shards.paths]
        count = 0  # every shard has them all: the largest count (a restarting shard may lag)
        for answer in _gather([r for r in refs if r is not None], ("subcount", account)):
            count = max(count, answer)
        return count

    def _cpu_percent(self) -> float:
        return _CPU.percent()

    # -- /varz ------------------------------------------------------------------------------

    def ep_varz(self, query):
        return "200 OK", self.varz()

    def varz(self) -> dict:
        o = self.ctx.options
        st = self.ctx.stats
        now = time.time()
        open_conns, _, totals = self._clients_view(False)
        counters = _totals(open_conns, totals)
        data = {
            "server_id": self.ctx.server_id,
            "server_name": self.ctx.server_name,
            "version": self.ctx.info_base.get("version", ""),
            "proto": self.ctx.info_base.get("proto", 1),
            "go": self.ctx.info_base.get("go", ""),
            "host": o.host,
            "port": self.ctx.port,
        }
        if self.ctx.info_base.get("auth_required"):
            data["auth_required"] = True
        if self.ctx.info_base.get("connect_urls"):
            data["connect_urls"] = list(self.ctx.info_base["connect_urls"])
        data["max_connections"] = o.max_connections
        if o.max_subscriptions:
            data["max_subscriptions"] = o.max_subscriptions
        data.update({
            "ping_interval": int(round(o.ping_interval * 1e9)),
            "ping_max": o.ping_max,
            "http_host": o.http_host or o.host,
            "http_port": o.http_port,
            "http_base_path": "",
            "https_port": 0,
            "auth_timeout": 2,
            "max_control_line": o.max_control_line,
            "max_payload": o.max_payload,
            "max_pending": o.max_pending,
            "cluster": {}, "gateway": {}, "leaf": {}, "mqtt": {}, "websocket": {},
            "jetstream": self._varz_jetstream(),
            "tls_timeout": 2,
            "write_deadline": int(round(o.write_deadline * 1e9)),
            "start": go_time(self.ctx.start_time),
            "now": go_time(now),
            "uptime": go_uptime(now - self.ctx.start_time),
            "mem": _rss(),
            "cores": os.cpu_count() or 1,
            "gomaxprocs": 1,  # one Python process: the server runs on one core
            "cpu": _num(self._cpu_percent()),
            "connections": len(open_conns),
            "total_connections": st.total_connections,
            "routes": 0, "remotes": 0, "leafnodes": 0,
            "in_msgs": counters["in_msgs"], "in_bytes": counters["in_bytes"],
            "in_client_msgs": counters["in_msgs"], "in_client_bytes": counters["in_bytes"],
            "out_msgs": counters["out_msgs"], "out_bytes": counters["out_bytes"],
            "out_client_msgs": counters["out_msgs"], "out_client_bytes": counters["out_bytes"],
            "slow_consumers": st.slow_consumers,
            "stale_connections": st.stale_connections,
            "stalled_clients": 0,
            "subscriptions": self._subscription_count(),
            "http_req_stats": dict(sorted(st.http_req_stats.items())),
            "config_load_time": go_time(st.config_load_time or self.ctx.start_time),
            "config_digest": _config_digest(o),
            "slow_consumer_stats": {**dict.fromkeys(EMPTY_KIND_STATS, 0),
                                    "clients": st.slow_consumers},
            "stale_connection_stats": {**dict.fromkeys(EMPTY_KIND_STATS, 0),
                                       "clients": st.stale_connections},
            "disk_io_wait_stats": {"waiters": 0, "waits": 0, "wait_time": 0, "max_wait_time": 0},
        })
        if self._system_account():
            data["system_account"] = self._system_account()
        return data

    def _accounts(self):
        return getattr(self.ctx, "accounts", None)

    def _system_account(self) -> str:
        accounts = self._accounts()
        return accounts.system_account if accounts is not None else ""

    def _account_exists(self, name: str) -> bool:
        accounts = self._accounts()
        return accounts.exists(name) if accounts is not None else name == GLOBAL_ACCOUNT

    def _account_names(self) -> list:
        accounts = self._accounts()
        return accounts.names() if accounts is not None else [GLOBAL_ACCOUNT]

    def statsz(self) -> dict:
        """The `statsz` of a `$SYS.SERVER.<id>.STATSZ` message (the reference's ServerStats)."""
        st = self.ctx.stats
        open_conns, _, totals = self._clients_view(False)
        counters = _totals(open_conns, totals)
        sent = {"msgs": counters["out_msgs"], "bytes": counters["out_bytes"]}
        received = {"msgs": counters["in_msgs"], "bytes": counters["in_bytes"]}
        return {
            "start": go_time(self.ctx.start_time), "mem": _rss(), "cores": os.cpu_count() or 1,
            "cpu": _num(self._cpu_percent()), "connections": len(open_conns),
            "total_connections": st.total_connections,
            "active_accounts": len({c.get("account", GLOBAL_ACCOUNT) for c in open_conns}),
            "subscriptions": self._subscription_count(),
            "sent": sent, "sent_to_clients": dict(sent),
            "received": received, "received_from_clients": dict(received),
            "slow_consumers": st.slow_consumers, "active_servers": 1, "gomaxprocs": 1,
        }

    # -- /connz -----------------------------------------------------------------------------

    def ep_connz(self, query):
        sort = query.get("sort", "")
        auth = _param_bool(query, "auth")  # no users yet: authorized_user/account stay empty
        subs = _param_subs(query)
        offset = _param_int(query, "offset")
        limit = _param_int(query, "limit")
        cid = _param_uint(query, "cid")
        state = _param_state(query)
        if sort and sort not in SORTS:
            raise BadRequest(f"invalid sorting option: {sort}")
        sort = sort or "cid"
        offset = max(offset, 0)
        if limit <= 0:
            limit = DEFAULT_LIST_SIZE
        if sort in ("stop", "reason") and state != "closed":
            raise BadRequest(f"sort by {sort} only valid on closed connections")
        if cid > 0:
            limit = 1
        acc = query.get("acc", "")
        user = query.get("user", "")
        filter_subject = query.get("filter_subject", "")
        if filter_subject and filter_subject != ">" and not acc:
            raise BadRequest("filter by subject only valid with account filtering")
        now = time.time()
        open_conns, closed, _ = self._clients_view(bool(subs))
        data = {"server_id": self.ctx.server_id, "now": go_time(now), "num_connections": 0,
                "total": 0, "offset": offset, "limit": limit, "connections": []}
        if acc and not self._account_exists(acc):
            return "200 OK", data  # an unknown account: the reference answers an empty page
        if acc:
            open_conns = [c for c in open_conns if c.get("account", GLOBAL_ACCOUNT) == acc]
            closed = [c for c in closed if c.get("account", GLOBAL_ACCOUNT) == acc]
        rows = []  # (raw record, closed?)
        if state in ("open", "all"):
            data["total"] += len(open_conns)
            rows += [(c, False) for c in open_conns]
        if state in ("closed", "all"):
            data["total"] += len(closed)
            rows += [(c, True) for c in closed]
        if user or query.get("mqtt_client"):
            rows = []  # no authenticated users and no MQTT clients yet: nothing matches
        if cid > 0:
            found = [r for r in rows if not r[1] and r[0]["cid"] == cid] \
                or [r for r in rows if r[1] and r[0]["cid"] == cid]
            rows = found[:1]
        if filter_subject and filter_subject != ">":
            pattern = filter_subject.encode()
            rows = [r for r in rows if not r[1] and any(
                _subjects_collide(pattern, s["subject"].encode()) for s in r[0].get("subs", ()))]
        if not rows:
            return "200 OK", data
        key, descending = SORTS[sort]

        def sort_key(row):
            c, was_closed = row
            end = c["stop"] if was_closed else now
            if key == "uptime":
                return end - c["start"]
            if key == "idle":
                return now - c["last_activity"]
            return c.get(key) or 0 if key not in ("reason",) else c.get("reason", "")

        rows.sort(key=lambda r: r[0]["cid"])
        if sort not in ("cid", "start"):
            rows.sort(key=sort_key, reverse=descending)
        page = rows[min(offset, len(rows)):min(offset, len(rows)) + limit]
        data["connections"] = [_conn_json(c, now, subs, was_closed, auth) for c, was_closed in page]
        data["num_connections"] = len(page)
        return "200 OK", data

    # -- /subsz -----------------------------------------------------------------------------

    def ep_subsz(self, query):
        subs = _param_bool(query, "subs")
        offset = max(_param_int(query, "offset"), 0)
        limit = _param_int(query, "limit")
        if limit <= 0:
            limit = DEFAULT_LIST_SIZE
        test = query.get("test", "")
        if test and not valid_literal_subject(test.encode()):
            raise BadRequest(f"invalid test subject, must be valid publish subject: {test}")
        acc = query.get("acc", "")
        if not acc:
            index = self._index()
        elif self._account_exists(acc):
            index = self._index(acc)
        else:
            index = {"stats": _empty_sublist_stats(), "subs": []}
        data = {"server_id": self.ctx.server_id, "now": go_time(time.time())}
        data.update(index["stats"])
        data.update({"total": 0, "offset": offset, "limit": limit})
        if subs and index["subs"]:
            open_conns, _, _ = self._clients_view(True)
            details = []
            for c in sorted(open_conns, key=lambda c: c["cid"]):
                c_acc = c.get("account", GLOBAL_ACCOUNT)
                if acc and c_acc != acc:
                    continue
                for s in c.get("subs", ()):
                    if test and not subject_matches(s["subject"].encode(), test.encode()):
                        continue
                    details.append(_sub_json(s, c["cid"], account=c_acc))
            data["total"] = len(details)
            page = details[min(offset, len(details)):min(offset, len(details)) + limit]
            if page:
                data["subscriptions_list"] = page
        return "200 OK", data

    def ep_subscriptionsz(self, query):
        return self.ep_subsz(query)

    # -- features that are not running: the reference's answer when they are not configured --

    def ep_routez(self, query):
        _param_subs(query)
        return "200 OK", {"server_id": self.ctx.server_id, "server_name": self.ctx.server_name,
                          "now": go_time(time.time()), "num_routes": 0, "routes": []}

    def ep_gatewayz(self, query):
        _param_subs(query)
        _param_bool(query, "accs")
        return "200 OK", {"server_id": self.ctx.server_id, "now": go_time(time.time()),
                          "outbound_gateways": {}, "inbound_gateways": {}}

    def ep_leafz(self, query):
        _param_bool(query, "subs")
        return "200 OK", {"server_id": self.ctx.server_id, "now": go_time(time.time()),
                          "leafnodes": 0, "leafs": []}

    def ep_jsz(self, query):
        opts = {name: _param_bool(query, name)
                for name in ("accounts", "streams", "consumers", "direct-consumers", "config")}
        offset = _param_int(query, "offset")
        limit = _param_int(query, "limit")
        for name in ("leader-only", "raft", "stream-leader-only"):
            _param_bool(query, name)
        return "200 OK", self.jsz(opts, query.get("acc", ""), offset, limit)

    def _js_config(self) -> dict:
        from .jetstream import server_limits, store_root

        js = self.ctx.options.jetstream
        mem, disk = server_limits(self.ctx)
        out = {"max_memory": mem, "max_storage": disk,
               "store_dir": os.path.join(store_root(self.ctx), "jetstream"),
               "sync_interval": int(round(js.sync_interval * 1e9))}
        if js.sync_always:
            out["sync_always"] = True
        if js.domain:
            out["domain"] = js.domain
        if js.cipher:
            out["cipher"] = "ChaCha20-Poly1305" if js.cipher == "chachapoly" else "AES-GCM"
        out["strict"] = js.strict
        return out

    def _js_streams(self, account: str, consumers: bool) -> list[dict]:
        """Each stream of an account as the Stream actor reports it (STREAM.INFO), and with
        `consumers` each consumer's info; a stream restarting just now is left out."""
        holders = (getattr(self.ctx, "js_holders", {}) or {}).get(account, {})
        out = []
        for name in sorted(holders):
            path = f"/server/jetstream/{account}/{name}"
            info = _ask(path, ("info", {}))
            if not isinstance(info, dict) or "state" not in info:
                continue
            if consumers:
                details = []
                for cname, cpath in _ask(path, ("consumer_names",)) or []:
                    cinfo = _ask(cpath, ("info",))
                    if isinstance(cinfo, dict):
                        details.append(cinfo)
                info["consumer_detail"] = details
            out.append(info)
        return out

    def jsz(self, opts: dict | None = None, acc: str = "", offset: int = 0, limit: int = 0) -> dict:
        """/jsz: JetStream usage, from the Stream and Consumer actors (the reference's JSInfo)."""
        opts = opts or {}
        if not self.ctx.options.jetstream.enabled:
            return {
                "memory": 0, "storage": 0, "reserved_memory": 0, "reserved_storage": 0,
                "accounts": 0, "ha_assets": 0, "api": {"level": 0, "total": 0, "errors": 0},
                "server_id": self.ctx.server_id, "now": go_time(time.time()), "disabled": True,
                "config": {"max_memory": 0, "max_storage": 0}, "streams": 0, "consumers": 0,
                "messages": 0, "bytes": 0, "total": 0,
            }
        from .jetstream import API_LEVEL, enabled_accounts

        accounts = enabled_accounts(self.ctx)
        stats = _ask("/server/jetstream/api", ("api_stats",)) or {}
        want_streams = opts.get("streams") or opts.get("consumers") or opts.get("config")
        per_account = []
        mem = store = streams = consumers = messages = nbytes = 0
        for account in accounts:
            infos = self._js_streams(account, bool(opts.get("consumers")))
            a_mem = a_store = 0
            for info in infos:
                st = info["state"]
                if info["config"].get("storage") == "memory":
                    a_mem += st["bytes"]
                else:
                    a_store += st["bytes"]
                consumers += st.get("consumer_count", 0)
                messages += st["messages"]
                nbytes += st["bytes"]
            mem += a_mem
            store += a_store
            streams += len(infos)
            if opts.get("accounts") or want_streams:
                detail = {"name": account, "id": account, "memory": a_mem, "storage": a_store,
                          "reserved_memory": 18446744073709551615,
                          "reserved_storage": 18446744073709551615, "accounts": 0, "ha_assets": 0,
                          "api": {"level": 0, **(stats.get("accounts", {}).get(account)
                                                 or {"total": 0, "errors": 0})}}
                if want_streams:
                    details = []
                    for info in infos:
                        d = {"name": info["config"]["name"], "created": info["created"],
                             "cluster": info.get("cluster", {"leader": self.ctx.server_id})}
                        if opts.get("config"):
                            d["config"] = info["config"]
                        d["state"] = info["state"]
                        if "consumer_detail" in info:
                            d["consumer_detail"] = info["consumer_detail"]
                        details.append(d)
                    detail["stream_detail"] = details
                if not acc or acc == account:
                    per_account.append(detail)
        out = {"memory": mem, "storage": store, "reserved_memory": 0, "reserved_storage": 0,
               "accounts": len(accounts), "ha_assets": 0,
               "api": {"level": API_LEVEL, "total": stats.get("total", 0),
                       "errors": stats.get("errors", 0)},
               "server_id": self.ctx.server_id, "now": go_time(time.time()),
               "config": self._js_config(), "limits": {"default_max_consumers": 1000},
               "streams": streams, "consumers": consumers, "messages": messages, "bytes": nbytes}
        if per_account:
            if offset:
                per_account = per_account[offset:]
            if limit:
                per_account = per_account[:limit]
            out["account_details"] = per_account
        out["total"] = len(per_account) if per_account else (len(accounts) if opts.get("accounts") else 0)
        return out

    def _varz_jetstream(self) -> dict:
        if not self.ctx.options.jetstream.enabled:
            return {}
        js = self.jsz()
        return {"config": js["config"],
                "stats": {k: js[k] for k in ("memory", "storage", "reserved_memory",
                                             "reserved_storage", "accounts", "ha_assets", "api")},
                "limits": js["limits"]}

    def ep_healthz(self, query):
        if _param_bool(query, "js-enabled"):
            log.warning("Healthcheck: js-enabled deprecated, use js-enabled-only instead")
        for name in ("js-enabled-only", "js-server-only", "js-meta-only"):
            _param_bool(query, name)
        details = _param_bool(query, "details")
        account, stream = query.get("account", ""), query.get("stream", "")
        consumer = query.get("consumer", "")
        problem = None
        if not account and stream:
            problem = '"account" must not be empty when checking stream health'
        elif not stream and consumer:
            problem = '"stream" must not be empty when checking consumer health'
        if problem is None:
            return "200 OK", {"status": "ok"}
        if details:
            log.warning("Healthcheck failed: 1 errors")
            return "400 Bad Request", {"status": "error",
                                       "errors": [{"type": "BAD_REQUEST", "error": problem}]}
        log.warning("Healthcheck failed: %s", _go_quote(problem))
        return "400 Bad Request", {"status": "error", "error": problem}

    def ep_accountz(self, query):
        acc = query.get("acc", "")
        data = {"server_id": self.ctx.server_id, "now": go_time(time.time())}
        if self._system_account():
            data["system_account"] = self._system_account()
        if not acc:
            data["accounts"] = self._account_names()
            return "200 OK", data
        detail = self.account_detail(acc)
        if detail is None:
            raise BadRequest(f"Account {acc} does not exist")
        data["account_detail"] = detail
        return "200 OK", data

    def account_detail(self, acc: str) -> dict | None:
        """/accountz?acc= (and `$SYS.REQ.ACCOUNT.<acc>.INFO`): None for an unknown account."""
        if not self._account_exists(acc):
            return None
        open_conns, _, _ = self._clients_view(False)
        index = self._index(acc)
        accounts = self._accounts()
        js = accounts.jetstream_limits(acc) is not None if accounts is not None else False
        out = {
            "account_name": acc, "update_time": go_time(self.ctx.start_time),
            "expired": False, "complete": True,
            "jetstream_enabled": bool(js and self.ctx.options.jetstream.enabled),
            "leafnode_connections": 0,
            "client_connections": sum(1 for c in open_conns if c.get("account", GLOBAL_ACCOUNT) == acc),
            "subscriptions": index["stats"]["num_subscriptions"],
        }
        mapper = accounts.mapper(acc) if accounts is not None else None
        if mapper:  # left out when there are none (the reference's omitempty)
            out["mappings"] = mapper.display()
        out["name_tag"] = acc
        out["sublist_stats"] = index["stats"]
        return out

    def ep_accstatz(self, query):
        """/accstatz; `accs` (a comma list, actor-nats' own) narrows it to some accounts, as
        `$SYS.REQ.ACCOUNT.<acc>.STATZ` asks."""
        unused = _param_bool(query, "unused")
        wanted = [a for a in query.get("accs", "").split(",") if a]
        open_conns, closed, _ = self._clients_view(False)
        data = {"server_id": self.ctx.server_id, "now": go_time(time.time()), "account_statz": []}
        for acc in (wanted or self._account_names()):
            if not self._account_exists(acc):
                continue
            mine = [c for c in open_conns if c.get("account", GLOBAL_ACCOUNT) == acc]
            if not mine and not unused:
                continue
            data["account_statz"].append(self.account_statz(acc, mine, closed))
        return "200 OK", data

    def account_statz(self, acc: str, open_conns: list | None = None, closed: list | None = None) -> dict:
        """One account's AccountStatz (its open connections, and the messages and bytes of its
        open and closed ones)."""
        if open_conns is None:
            conns, closed, _ = self._clients_view(False)
            open_conns = [c for c in conns if c.get("account", GLOBAL_ACCOUNT) == acc]
        gone = [c for c in closed or () if c.get("account", GLOBAL_ACCOUNT) == acc]
        counters = _totals(open_conns + gone, {})
        none = {"msgs": 0, "bytes": 0}
        return {
            "acc": acc, "name": acc, "conns": len(open_conns),
            "leafnodes": 0, "total_conns": len(open_conns),
            "num_subscriptions": self._index(acc)["stats"]["num_subscriptions"],
            "sent": {"msgs": counters["out_msgs"], "bytes": counters["out_bytes"],
                     "gateways": dict(none), "routes": dict(none), "leafs": dict(none)},
            "received": {"msgs": counters["in_msgs"], "bytes": counters["in_bytes"],
                         "gateways": dict(none), "routes": dict(none), "leafs": dict(none)},
            "slow_consumers": sum(1 for c in gone if c.get("reason", "").startswith("Slow Consumer")),
        }

    # -- /metrics (actor-nats) ----------------------------------------------------------------

    def ep_metrics(self, query):
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
        from prometheus_client.core import CollectorRegistry

        reg = CollectorRegistry(auto_describe=False)
        reg.register(_MetricsCollector(self.varz(), actor_tree()))
        return "200 OK", CONTENT_TYPE_LATEST, generate_latest(reg)

    # -- actor-nats' own endpoints ----------------------------------------------------------

    def ep_configz(self, query):
        """The running options (actor-nats' own endpoint; the reference has none)."""
        from dataclasses import asdict

        o = self.ctx.options
        opts = {k: v for k, v in asdict(o).items() if k != "explicit"}
        return "200 OK", {"server_id": self.ctx.server_id, "now": go_time(time.time()),
                          "config_file": o.config_file, "config_digest": _config_digest(o),
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
        return "200 OK", {"server_id": self.ctx.server_id, "now": go_time(time.time()),
                          "actors": actor_tree()}


# -- shaping ----------------------------------------------------------------------------------

def _totals(open_conns: list, closed_totals: dict) -> dict:
    out = {}
    for k in ("in_msgs", "out_msgs", "in_bytes", "out_bytes"):
        out[k] = sum(c[k] for c in open_conns) + closed_totals.get(k, 0)
    return out


def _sub_json(s: dict, cid: int, account: str | None) -> dict:
    """A SubDetail: the account fields are there for /subsz and closed connections only, as
    the reference fills them."""
    out = {}
    if account:
        out["account"] = account
        out["account_tag"] = account
    out["subject"] = s["subject"]
    if s.get("qgroup"):
        out["qgroup"] = s["qgroup"]
    out["sid"] = s["sid"]
    out["msgs"] = s["msgs"]
    if s.get("max"):
        out["max"] = s["max"]
    out["cid"] = cid
    return out


def _conn_json(c: dict, now: float, subs, closed: bool, auth: bool = False) -> dict:
    """A ConnInfo in the reference's field order, omitting what it omits when empty."""
    out = {"cid": c["cid"], "kind": c.get("kind", "Client"), "type": c.get("type", "nats"),
           "ip": c["ip"], "port": c["port"], "start": go_time(c["start"]),
           "last_activity": go_time(c["last_activity"])}
    end = now
    if closed:
        end = c.get("stop") or now
        out["stop"] = go_time(end)
        if c.get("reason"):
            out["reason"] = c["reason"]
    out["rtt"] = go_rtt(c.get("rtt", 0.0))
    out["uptime"] = go_uptime(end - c["start"])
    out["idle"] = go_uptime(end - c["last_activity"])
    for k in ("pending_bytes", "in_msgs", "out_msgs", "in_bytes", "out_bytes"):
        out[k] = c[k]
    if c.get("stalls"):
        out["stalls"] = c["stalls"]
    out["subscriptions"] = c["subscriptions"]
    for k in ("name", "lang", "version"):
        if c.get(k):
            out[k] = c[k]
    sub_list = c.get("subs") or []
    if subs == "detail" and sub_list:
        out["subscriptions_list_detail"] = [_sub_json(s, c["cid"], account=c.get("account", GLOBAL_ACCOUNT) if closed else None) for s in sub_list]
    elif subs and sub_list:
        out["subscriptions_list"] = [s["subject"] for s in sub_list]
    if auth and not closed:
        out["name_tag"] = c.get("account", GLOBAL_ACCOUNT)  # the account's name tag (its name, with no JWT)
    return out


def _subjects_collide(a: bytes, b: bytes) -> bool:
    """Whether two subjects (either may have wildcards) can match a common literal subject."""
    ta, tb = a.split(b"."), b.split(b".")
    for i in range(max(len(ta), len(tb))):
        x = ta[i] if i < len(ta) else None
        y = tb[i] if i < len(tb) else None
        if x == b">" or y == b">":
            return x is not None and y is not None
        if x is None or y is None:
            return False
        if x != y and x != b"*" and y != b"*":
            return False
    return True


def _empty_sublist_stats() -> dict:
    return {"num_subscriptions": 0, "num_cache": 0, "num_inserts": 0, "num_removes": 0,
            "num_matches": 0, "cache_hit_rate": 0, "max_fanout": 0, "avg_fanout": 0}


def _config_digest(o) -> str:
    if not o.config_file:
        return ""
    from ..config.loader import digest

    try:
        return digest(o.config_file)
    except OSError:
        return ""


class _MetricsCollector:
    """One scrape's worth of metrics (built per request; no global registry)."""

    COUNTERS = ("total_connections", "in_msgs", "out_msgs", "in_bytes", "out_bytes",
                "slow_consumers", "stale_connections")
    GAUGES = ("connections", "subscriptions", "mem", "cpu", "cores", "max_connections",
              "max_payload", "max_pending")

    def __init__(self, varz: dict, actors: list):
        self.varz = varz
        self.actors = actors

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        v = self.varz
        labels = ["server_id"]
        sid = [v["server_id"]]
        for name in self.COUNTERS:
            m = CounterMetricFamily(f"nats_varz_{name}", f"/varz {name}", labels=labels)
            m.add_metric(sid, v[name])
            yield m
        for name in self.GAUGES:
            m = GaugeMetricFamily(f"nats_varz_{name}", f"/varz {name}", labels=labels)
            m.add_metric(sid, v[name])
            yield m
        up = GaugeMetricFamily("nats_varz_uptime_seconds", "seconds since the server started",
                               labels=labels)
        up.add_metric(sid, _uptime_seconds(v))
        yield up
        kinds: dict[str, dict] = {}
        for a in self.actors:
            k = kinds.setdefault(a["kind"], {"n": 0, "mailbox": 0, "max": 0, "restarts": 0})
            k["n"] += 1
            k["mailbox"] += a["mailbox"]
            k["max"] = max(k["max"], a["mailbox"])
            k["restarts"] += a["restarts"]
        count = GaugeMetricFamily("actor_nats_actors", "live actors per kind", labels=["kind"])
        depth = GaugeMetricFamily("actor_nats_mailbox_depth",
                                  "messages waiting in the mailboxes of an actor kind", labels=["kind"])
        deepest = GaugeMetricFamily("actor_nats_mailbox_depth_max",
                                    "the deepest mailbox of an actor kind", labels=["kind"])
        restarts = CounterMetricFamily("actor_nats_actor_restarts",
                                       "restarts of the actors of a kind", labels=["kind"])
        for kind, k in sorted(kinds.items()):
            count.add_metric([kind], k["n"])
            depth.add_metric([kind], k["mailbox"])
            deepest.add_metric([kind], k["max"])
            restarts.add_metric([kind], k["restarts"])
        yield from (count, depth, deepest, restarts)
        slow = CounterMetricFamily("actor_nats_slow_consumers",
                                   "connections closed as slow consumers, per connection kind",
                                   labels=["kind"])
        for kind in EMPTY_KIND_STATS:
            slow.add_metric([kind], v["slow_consumer_stats"][kind])
        yield slow


def _uptime_seconds(v: dict) -> float:
    return max(time.time() - _parse_go_time(v["start"]), 0.0)


def _parse_go_time(s: str) -> float:
    import calendar

    base, _, frac = s.rstrip("Z").partition(".")
    secs = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    return secs + (float("0." + frac) if frac else 0.0)


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


class _CpuSampler:
    """Process CPU use in percent over the last sampling window (at least a second), as the
    reference's pse samples it; one per process, shared by HTTP and $SYS requests."""

    def __init__(self):
        self._sample = (time.monotonic(), _cpu_seconds())
        self._cpu = 0.0

    def percent(self) -> float:
        now, cpu = time.monotonic(), _cpu_seconds()
        then, cpu_then = self._sample
        if now - then >= 1.0:
            self._cpu = round((cpu - cpu_then) * 100.0 / (now - then), 1)
            self._sample = (now, cpu)
        return self._cpu


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


_CPU = _CpuSampler()
