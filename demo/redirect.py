"""Stand-ins for a transparent proxy's iptables redirect, so the demo runs without root or iptables.

Outbound: ``with_redirect_listener`` adds a PROXY-protocol listener to a sidecar's bootstrap.
Inbound: ``Redirector`` binds each inbound port and forwards to that listener.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


def with_redirect_listener(config: dict[str, Any], address: str, port: int) -> dict[str, Any]:
    """Add a static listener standing in for the transparent proxy's iptables redirect.

    Without iptables nothing reaches the ``bind_to_port: false`` outbound listeners of a
    transparent-proxy Dataplane. A client connects to ``address:port`` instead and sends a PROXY
    protocol header naming the original destination (e.g. a MeshService VIP); the listener
    restores that destination and hands the connection to the outbound listener for it.
    """
    listener = {
        "name": f"redirect-emulation:{port}",
        "address": {"socket_address": {"address": address, "port_value": port}},
        "use_original_dst": True,
        "listener_filters": [
            {
                "name": "envoy.filters.listener.proxy_protocol",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol"
                },
            }
        ],
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.direct_response",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.network.direct_response.v3.Config",
                            "response": {"inline_string": "no outbound listener for that destination\n"},
                        },
                    }
                ]
            }
        ],
    }
    out = dict(config)
    static = dict(out.get("static_resources", {}))
    static["listeners"] = [*static.get("listeners", []), listener]
    out["static_resources"] = static
    return out


class Redirector:
    """Stands in for iptables' inbound redirect of a transparent-proxy Dataplane (asyncio).

    Envoy's inbound listeners for such a Dataplane do not bind their port. This binds each
    inbound ``address:port`` and forwards every connection to the sidecar's redirect listener
    (``address:redirect_port``, see ``with_redirect_listener``) behind a PROXY
    header naming the original destination, so Envoy hands it to the right inbound listener.
    """

    def __init__(self, inbounds: list[tuple[str, int]], redirect_port: int) -> None:
        self.inbounds = inbounds
        self.redirect_port = redirect_port
        self._servers: list[asyncio.Server] = []

    async def start(self) -> None:
        for host, port in self.inbounds:
            self._servers.append(await asyncio.start_server(self._forward, host, port, reuse_address=True))

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers = []

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        src_host, src_port = writer.get_extra_info("peername")[:2]
        dst_host, dst_port = writer.get_extra_info("sockname")[:2]
        try:
            up_reader, up_writer = await asyncio.open_connection(dst_host, self.redirect_port)
        except OSError:
            writer.close()
            return
        up_writer.write(f"PROXY TCP4 {src_host} {dst_host} {src_port} {dst_port}\r\n".encode())
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()
