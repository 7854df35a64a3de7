"""The `actor-nats` command: `run` (the server, with nats-server's flags), `tree`, `kill`, and
nats-server's `--signal`, `-t`, `-v`, `-h`.

Flags follow Go's `flag` package, as the reference's do: `-x` and `--x` are the same, values go
as `-x value` or `-x=value`, booleans as `-x` or `-x=false`. Flags override the config file,
so the file is read first and the flags are applied on top (also on reload). A flag for a
feature actor-nats does not implement yet is refused by name, never ignored.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass

from . import NATS_VERSION, __version__

USAGE = """\
Usage: actor-nats [run] [options]
       actor-nats tree [-s URL] [--json] [--watch]
       actor-nats kill PATH [-s URL] [--reason TEXT]
       actor-nats passwd [--password X]
       actor-nats jwt {init,add,generate,push,describe,list} ... (see actor-nats jwt -h)

Server Options:
    -a, --addr, --net <host>         Bind to host address (default: 0.0.0.0)
    -p, --port <port>                Use port for clients (default: 4222; -1 for a random port)
    -n, --name
        --server_name <server_name>  Server name (default: auto)
    -P, --pid <file>                 File to store PID
    -m, --http_port <port>           Use port for http monitoring
    -c, --config <file>              Configuration file (NATS format, or YAML for .yaml/.yml)
    -t                               Test configuration and exit
    -sl,--signal <signal>[=<pid>]    Send signal to actor-nats process (ldm, stop, quit, term, reopen, reload)
                                     <pid> can be either a PID (e.g. 1) or the path to a PID file
        --client_advertise <string>  Client URL to advertise to other servers
        --ports_file_dir <dir>       Creates a ports file in the specified directory (actor-nats_<pid>.ports).

Logging Options:
    -l, --log <file>                 File to redirect log output
    -T, --logtime                    Timestamp log entries (default: true)
        --logtime_utc                Timestamps in UTC instead of local timezone (default: false)
    -D, --debug                      Enable debugging output
    -V, --trace                      Trace the raw protocol
    -VV                              Verbose trace (traces system account as well)
    -DV                              Debug and trace
    -DVV                             Debug and verbose trace (traces system account as well)

JetStream Options:
    -js, --jetstream                 Enable JetStream functionality
    -sd, --store_dir <dir>           Set the storage directory

Authorization Options:
        --user <user>                User required for connections
        --pass <password>            Password required for connections
        --auth <token>               Authorization token required for connections

Common Options:
    -h, --help                       Show this message
    -v, --version                    Show version
"""


class UsageError(Exception):
    """A bad command line: exit 2 after printing the message and usage, as Go's flag does."""


@dataclass(frozen=True)
class Flag:
    names: tuple
    dest: str
    kind: str  # "str", "int", "bool"


FLAGS = [
    Flag(("a", "addr", "net"), "host", "str"),
    Flag(("p", "port"), "port", "int"),
    Flag(("n", "name", "server_name"), "server_name", "str"),
    Flag(("P", "pid"), "pid_file", "str"),
    Flag(("m", "http_port"), "http_port", "int"),
    Flag(("c", "config"), "config", "str"),
    Flag(("t",), "check", "bool"),
    Flag(("sl", "signal"), "signal", "str"),
    Flag(("client_advertise",), "client_advertise", "str"),
    Flag(("ports_file_dir",), "ports_file_dir", "str"),
    Flag(("l", "log"), "log_file", "str"),
    Flag(("T", "logtime"), "logtime", "bool"),
    Flag(("logtime_utc",), "logtime_utc", "bool"),
    Flag(("D", "debug"), "debug", "bool"),
    Flag(("V", "trace"), "trace", "bool"),
    Flag(("VV",), "trace_verbose", "bool"),
    Flag(("DV",), "debug_trace", "bool"),
    Flag(("DVV",), "debug_trace_verbose", "bool"),
    Flag(("js", "jetstream"), "js_enabled", "bool"),
    Flag(("sd", "store_dir"), "js_store_dir", "str"),
    Flag(("user",), "username", "str"),
    Flag(("pass",), "password", "str"),
    Flag(("auth",), "authorization", "str"),
    Flag(("h", "help"), "help", "bool"),
    Flag(("v", "version"), "version", "bool"),
]

# Flags the reference has whose features actor-nats does not implement yet.
NOT_YET = {
    "ms": "https monitoring", "https_port": "https monitoring",
    "s": "syslog", "syslog": "syslog", "r": "remote syslog", "remote_syslog": "remote syslog",
    "log_size_limit": "log size limits", "max_traced_msg_len": "trace length limits",
    "tls": "TLS", "tlscert": "TLS", "tlskey": "TLS", "tlsverify": "TLS", "tlscacert": "TLS",
    "help_tls": "TLS", "routes": "clustering", "cluster": "clustering",
    "cluster_listen": "clustering", "cluster_name": "clustering", "no_advertise": "clustering",
    "cluster_advertise": "clustering", "connect_retries": "clustering", "profile": "profiling",
}

_BY_NAME = {name: f for f in FLAGS for name in f.names}
_TRUE = {"1", "t", "T", "true", "TRUE", "True"}
_FALSE = {"0", "f", "F", "false", "FALSE", "False"}


def parse_flags(argv: list[str]) -> tuple[dict, list[str]]:
    """Go-flag style parsing. Returns ({dest: value} for the flags given, positional args)."""
    values: dict = {}
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            rest.extend(argv[i:])
            break
        if not arg.startswith("-") or arg == "-":
            rest.append(arg)
            continue
        name = arg[2:] if arg.startswith("--") else arg[1:]
        value = None
        if "=" in name:
            name, value = name.split("=", 1)
        if name in NOT_YET:
            raise UsageError(f"flag -{name} ({NOT_YET[name]}) is not supported by actor-nats yet")
        flag = _BY_NAME.get(name)
        if flag is None:
            raise UsageError(f"flag provided but not defined: -{name}")
        if flag.kind == "bool":
            if value is None:
                values[flag.dest] = True
            elif value in _TRUE:
                values[flag.dest] = True
            elif value in _FALSE:
                values[flag.dest] = False
            else:
                raise UsageError(f'invalid boolean value "{value}" for -{name}: parse error')
            continue
        if value is None:
            if i >= len(argv):
                raise UsageError(f"flag needs an argument: -{name}")
            value = argv[i]
            i += 1
        if flag.kind == "int":
            try:
                values[flag.dest] = int(value, 10)
            except ValueError:
                raise UsageError(f'invalid value "{value}" for flag -{name}: parse error') from None
        else:
            values[flag.dest] = value
    return values, rest


def flag_overrides(flags: dict) -> dict:
    """Translate parsed flags into Options fields (only the ones given)."""
    over = {}
    for key in ("host", "port", "server_name", "pid_file", "http_port", "client_advertise",
                "ports_file_dir", "log_file", "logtime", "logtime_utc", "username", "password",
                "authorization", "js_enabled", "js_store_dir"):
        if key in flags:
            over[key] = flags[key]
    if flags.get("debug") or flags.get("debug_trace") or flags.get("debug_trace_verbose"):
        over["debug"] = True
    if flags.get("trace") or flags.get("trace_verbose") or flags.get("debug_trace") \
            or flags.get("debug_trace_verbose"):
        over["trace"] = True
    if "debug" in flags and flags["debug"] is False:
        over["debug"] = False
    if "trace" in flags and flags["trace"] is False:
        over["trace"] = False
    return over


def load_options(flags: dict, check_only: bool = False, warnings: list | None = None):
    """Config file (if any) first, then flags on top. Raises on a bad file or value; what the
    reference only warns about goes to `warnings` (an error with `check_only`)."""
    from .config.loader import load

    return load(flags.get("config", ""), flag_overrides(flags), check_only, warnings)


# -- signals ----------------------------------------------------------------------------------

SIGNALS = {"stop": signal.SIGKILL, "quit": signal.SIGINT, "term": signal.SIGTERM,
           "reopen": signal.SIGUSR1, "reload": signal.SIGHUP, "ldm": signal.SIGUSR2}


def send_signal(spec: str) -> int:
    cmd, _, target = spec.partition("=")
    sig = SIGNALS.get(cmd)
    if sig is None:
        print(f'unknown signal "{cmd}"', file=sys.stderr)
        return 1
    pids: list[int]
    if target:
        if os.path.isfile(target):
            try:
                with open(target) as f:
                    text = f.read().strip()
            except OSError as e:
                print(f"could not read pid file {target}: {e}", file=sys.stderr)
                return 1
        else:
            text = target
        try:
            pids = [int(text)]
        except ValueError:
            print(f'invalid pid "{text}"', file=sys.stderr)
            return 1
    else:
        pids = _find_servers()
        if not pids:
            print("no actor-nats processes running", file=sys.stderr)
            return 1
        if len(pids) > 1:
            listing = "\n".join(f"  {p}" for p in pids)
            print(f"multiple actor-nats processes running:\n{listing}", file=sys.stderr)
            return 1
    try:
        os.kill(pids[0], sig)
    except OSError as e:
        print(f"failed to signal pid {pids[0]}: {e}", file=sys.stderr)
        return 1
    return 0


def _find_servers() -> list[int]:
    try:
        out = subprocess.run(["pgrep", "-f", r"(actor-nats|actor_nats) run"], capture_output=True,
                             text=True, check=False).stdout
    except FileNotFoundError:
        return []
    me = os.getpid()
    return [int(p) for p in out.split() if int(p) != me]


# -- entry point ------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("tree", "kill"):
        from . import tools

        return tools.main(argv)
    if argv and argv[0] in ("passwd", "jwt"):  # operator-mode tooling: actor_nats/nsc.py
        from . import nsc

        return nsc.main(argv)
    if argv and argv[0] == "run":
        argv = argv[1:]
    try:
        flags, rest = parse_flags(argv)
    except UsageError as e:
        print(e, file=sys.stderr)
        print(USAGE, file=sys.stderr)
        return 2
    if "version" in rest or flags.get("version"):
        print(f"actor-nats: v{__version__} (nats-server compatible: v{NATS_VERSION})")
        return 0
    if "help" in rest or flags.get("help"):
        print(USAGE)
        return 0
    if rest:
        print(f"unexpected argument: {rest[0]}", file=sys.stderr)
        print(USAGE, file=sys.stderr)
        return 2
    if flags.get("signal"):
        return send_signal(flags["signal"])
    from actor_nats.actors.runtime import patch

    patch()  # before the config modules import anything that imports ssl or socket (PyJWT does)
    warnings: list[str] = []
    try:
        options = load_options(flags, check_only=bool(flags.get("check")), warnings=warnings)
    except Exception as e:  # config and option errors are for the user, not a traceback
        print(f"actor-nats: {e}", file=sys.stderr)
        return 1
    for warning in warnings:  # printed before logging starts, as the reference does
        print(warning, file=sys.stderr)
    if flags.get("check"):
        if not flags.get("config"):
            print("actor-nats: must specify [-c, --config] option to check configuration file(s)",
                  file=sys.stderr)
            return 1
        from .config.loader import digest

        print(f"actor-nats: configuration file {flags['config']} is valid ({digest(flags['config'])})",
              file=sys.stderr)
        return 0
    return serve(options, flags)


def serve(options, flags: dict) -> int:
    from actor_nats.actors.runtime import patch

    patch()
    from actor_nats.actors import log as nlog
    from actor_nats.actors.server import run

    nlog.setup(options.debug, options.trace, options.logtime, options.logtime_utc, options.log_file)
    return run(options, lambda: load_options(flags))


def _json(obj) -> str:
    return json.dumps(obj, indent=2)


if __name__ == "__main__":
    raise SystemExit(main())
