"""`actor-nats tree` and `actor-nats kill`: look inside a running server through its monitoring
port, and crash an actor on purpose to watch its supervisor restart it.

    actor-nats tree [-s URL] [--json] [--watch [SECONDS]]
    actor-nats kill PATH [-s URL] [--reason TEXT]

URL is the monitoring address (default http://127.0.0.1:8222). `kill` is refused by the server
unless its config enables it with `debug { allow_kill: true }`.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8222"

_COLOURS = {"supervisor": "\033[1;34m", "server": "\033[1;34m", "router": "\033[1;34m",
            "clients": "\033[1;34m", "shard": "\033[36m", "client": "\033[32m",
            "listener": "\033[35m", "monitor": "\033[35m", "config": "\033[33m"}
_RESET = "\033[0m"


def _get(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


def fetch_tree(base: str) -> dict:
    return _get(base.rstrip("/") + "/actorz")


def _age(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60)}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60)}m"


def render(tree: dict, colour: bool = False) -> str:
    """One line per actor, indented by depth, with aligned columns."""
    actors = sorted(tree["actors"], key=lambda a: a["path"])
    rows = []
    for a in actors:
        depth = a["path"].count("/") - 1
        name = "  " * depth + a["path"].rsplit("/", 1)[-1]
        extra = []
        for key in ("ip", "port", "name", "account", "index", "listen", "http_port", "config_file"):
            if a.get(key) not in (None, ""):
                extra.append(f"{key}={a[key]}")
        rows.append((name, a["kind"], a["state"], str(a["mailbox"]), str(a["received"]),
                     str(a["restarts"]), _age(a["age"]), " ".join(extra)))
    header = ("ACTOR", "KIND", "STATE", "MAILBOX", "RECEIVED", "RESTARTS", "AGE", "")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    lines = []
    for n, r in enumerate([header] + rows):
        cells = [r[0].ljust(widths[0]), r[1].ljust(widths[1]), r[2].ljust(widths[2])]
        cells += [r[i].rjust(widths[i]) for i in (3, 4, 5, 6)]
        line = "  ".join(cells) + ("  " + r[7] if r[7] else "")
        if colour and n > 0:
            c = _COLOURS.get(r[1], "")
            if r[5] != "0":
                c = "\033[1;31m"  # restarted actors stand out
            line = c + line + _RESET if c else line
        lines.append(line.rstrip())
    lines.append(f"{len(rows)} actors, server {tree.get('server_id', '?')}")
    return "\n".join(lines)


def _parse(argv: list[str], takes_path: bool):
    opts = {"url": DEFAULT_URL, "json": False, "watch": None, "reason": "", "path": None}
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a in ("-s", "--server", "--url"):
            opts["url"] = argv[i]
            i += 1
        elif a.startswith(("-s=", "--server=", "--url=")):
            opts["url"] = a.split("=", 1)[1]
        elif a == "--json":
            opts["json"] = True
        elif a == "--watch":
            opts["watch"] = 1.0
            if i < len(argv) and argv[i].replace(".", "", 1).isdigit():
                opts["watch"] = float(argv[i])
                i += 1
        elif a == "--reason":
            opts["reason"] = argv[i]
            i += 1
        elif takes_path and opts["path"] is None and not a.startswith("-"):
            opts["path"] = a
        else:
            raise ValueError(f"unexpected argument: {a}")
    if not opts["url"].startswith("http"):
        opts["url"] = "http://" + opts["url"]
    return opts


def tree_main(argv: list[str]) -> int:
    opts = _parse(argv, takes_path=False)
    colour = sys.stdout.isatty() and not opts["json"]
    while True:
        try:
            tree = fetch_tree(opts["url"])
        except (urllib.error.URLError, OSError) as e:
            print(f"actor-nats tree: cannot reach {opts['url']}: {e}", file=sys.stderr)
            return 1
        if opts["json"]:
            print(json.dumps(tree, indent=2))
        else:
            out = render(tree, colour)
            if opts["watch"] is not None and sys.stdout.isatty():
                sys.stdout.write("\033[H\033[2J")
            print(out, flush=True)
        if opts["watch"] is None:
            return 0
        time.sleep(opts["watch"])


def kill_main(argv: list[str]) -> int:
    opts = _parse(argv, takes_path=True)
    if not opts["path"]:
        print("usage: actor-nats kill PATH [-s URL] [--reason TEXT]", file=sys.stderr)
        return 2
    query = urllib.parse.urlencode({"path": opts["path"], "reason": opts["reason"]})
    url = opts["url"].rstrip("/") + "/actorz/kill?" + query
    req = urllib.request.Request(url, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as e:
        try:
            msg = json.loads(e.read()).get("error", str(e))
        except ValueError:
            msg = str(e)
        print(f"actor-nats kill: {msg}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as e:
        print(f"actor-nats kill: cannot reach {opts['url']}: {e}", file=sys.stderr)
        return 1
    print(f"killed {body['killed']}")
    return 0


def main(argv: list[str]) -> int:
    cmd, rest = argv[0], argv[1:]
    try:
        return tree_main(rest) if cmd == "tree" else kill_main(rest)
    except (ValueError, IndexError) as e:
        print(f"actor-nats {cmd}: {e}", file=sys.stderr)
        return 2
