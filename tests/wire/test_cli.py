"""The command line, as deployment scripts use it: flags, pid and ports files, `--signal`,
`-t`, exit codes and messages. Each test runs against actor-nats and the reference binary."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time

import pytest

from tests.servers import command, free_port
from tests.wire.proto import client


def run_cli(impl: str, *args: str, timeout: float = 15.0) -> subprocess.CompletedProcess:
    return subprocess.run(_base(impl) + list(args), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def _base(impl: str) -> list[str]:
    cmd = command(impl)
    return cmd[:-1] if impl == "actor" else cmd  # actor-nats: flags without `run` mean run


def wait_until(pred, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_random_port_is_logged_and_served(impl, start_server):
    srv = start_server(impl, port=-1)
    line = [l for l in srv.log().splitlines() if "Listening for client connections on" in l][0]
    port = int(line.rsplit(":", 1)[1])
    assert port > 0
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        assert s.recv(5) == b"INFO "


def test_port_in_use_exits_nonzero_with_the_reference_message(impl):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = run_cli(impl, "-a", "127.0.0.1", "-p", str(port))
    assert proc.returncode != 0
    assert f"Error listening on port: 127.0.0.1:{port}" in proc.stderr
    assert "address already in use" in proc.stderr


def test_ipv6_address(impl, start_server):
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    port = free_port()
    srv = start_server(impl, args=["-a", "::1"], port=port)
    assert f"Listening for client connections on [::1]:{srv.port}" in srv.log()


def test_bad_flag_is_named(impl):
    proc = run_cli(impl, "--no_such_flag")
    assert "flag provided but not defined: -no_such_flag" in proc.stderr
    # The reference 2.15.1 then prints its usage and exits 0; actor-nats exits 2, as Go's
    # flag package does by default, so a script notices the mistake.
    if impl == "actor":
        assert proc.returncode == 2


def test_reload_needs_a_config_file(impl, start_server):
    srv = start_server(impl)
    srv.signal(signal.SIGHUP)
    wait_until(lambda: "Failed to reload server configuration: can only reload config when a file "
                       "is provided using -c or --config" in srv.log())
    assert srv.proc.poll() is None


def test_missing_config_file_exits_nonzero(impl, tmp_path):
    proc = run_cli(impl, "-c", str(tmp_path / "nope.conf"))
    assert proc.returncode != 0
    assert f"open {tmp_path / 'nope.conf'}: no such file or directory" in proc.stderr


def test_check_config(impl, tmp_path):
    good = tmp_path / "good.conf"
    good.write_text("port: 4333\nmax_payload: 1MB\n")
    proc = run_cli(impl, "-t", "-c", str(good))
    assert proc.returncode == 0
    assert f"configuration file {good} is valid (sha256:" in proc.stderr + proc.stdout
    bad = tmp_path / "bad.conf"
    bad.write_text("port: 4333\nno_such_key: 1\n")
    proc = run_cli(impl, "-t", "-c", str(bad))
    assert proc.returncode != 0
    assert f'{bad}:2:1: unknown field "no_such_key"' in proc.stderr


def test_pid_file_and_signals(impl, start_server, tmp_path):
    pid_file = tmp_path / "server.pid"
    srv = start_server(impl, args=["-P", str(pid_file)], config="max_payload: 1MB\n")
    wait_until(pid_file.exists)
    assert int(pid_file.read_text()) == srv.pid
    w = client(srv)
    proc = run_cli(impl, "--signal", f"reload={pid_file}")
    assert proc.returncode == 0, proc.stderr
    wait_until(lambda: "Reloaded server configuration" in srv.log())
    assert w.roundtrip(b"SUB a 1\r\nPUB a 1\r\nx\r\n")  # still connected after the reload
    proc = run_cli(impl, "--signal", f"quit={srv.pid}")
    assert proc.returncode == 0, proc.stderr
    assert srv.wait(10) == 0


def test_ports_file(impl, start_server, tmp_path):
    srv = start_server(impl, args=["--ports_file_dir", str(tmp_path), "-m", str(free_port())])
    wait_until(lambda: list(tmp_path.glob(f"*_{srv.pid}.ports")))
    (path,) = tmp_path.glob(f"*_{srv.pid}.ports")
    ports = json.loads(path.read_text())
    assert ports["nats"] == [f"nats://127.0.0.1:{srv.port}"]
    assert ports["monitoring"][0].startswith("http://127.0.0.1:")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signals_close_clients_and_exit_0(impl, start_server, sig):
    srv = start_server(impl)
    w = client(srv)
    srv.signal(sig)
    assert srv.wait(10) == 0
    w.expect_closed()


def test_version_flag(impl):
    proc = run_cli(impl, "-v")
    assert proc.returncode == 0
    assert "v2." in proc.stdout + proc.stderr


def test_monitor_healthz(impl, start_server):
    import urllib.request

    mport = free_port()
    srv = start_server(impl, args=["-m", str(mport)])
    with urllib.request.urlopen(f"http://127.0.0.1:{mport}/healthz", timeout=5) as resp:
        assert resp.status == 200
        assert json.loads(resp.read())["status"] == "ok"
    assert srv.proc.poll() is None
