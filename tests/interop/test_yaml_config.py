"""A configuration in YAML (actor-nats only: the reference reads only its own format) runs the
server with the same options as the same configuration in the NATS format."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import nats

from tests.servers import free_port

CONF = """\
server_name: "yaml-1"
max_payload: 2KB
max_control_line: 1KB
ping_interval: "30s"
http_port: {http}
"""

YAML = """\
server_name: yaml-1
max_payload: 2KB
max_control_line: 1KB
ping_interval: 30s
http_port: {http}
"""


def configz(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/configz", timeout=5) as resp:
        return json.loads(resp.read())


def test_yaml_and_nats_format_give_the_same_server(start_server, tmp_path):
    servers = []
    for name, text in (("server.conf", CONF), ("server.yaml", YAML)):
        http = free_port()
        path = tmp_path / name
        path.write_text(text.format(http=http))
        srv = start_server("actor", args=["-c", str(path)])
        servers.append((srv, http))
    opts = [configz(http)["options"] for _, http in servers]
    for o in opts:
        o.pop("config_file")
        o.pop("http_port")
        o.pop("port")
    assert opts[0] == opts[1]
    assert opts[0]["max_payload"] == 2048 and opts[0]["ping_interval"] == 30.0

    async def check(url):
        nc = await nats.connect(url)
        try:
            assert nc.max_payload == 2048
            assert nc._server_info["server_name"] == "yaml-1"
        finally:
            await nc.close()

    for srv, _ in servers:
        asyncio.run(check(srv.url))
