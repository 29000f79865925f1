"""The ADS gRPC service on grpc.aio: bytes in, bytes out.

No (de)serializers are registered: requests arrive as bytes and go to the field-skipping
parser, responses leave as bytes framed from cached ``Any`` encodings. One coroutine per
stream writes, so responses keep the order the stream state machine chose.

Node ids: the first request must carry ``node.id`` = ``<mesh>.<dataplane name>``. An id the
cache does not know ends the stream with NOT_FOUND (Envoy retries with backoff and gets its
configuration once the Dataplane appears in the input); a node removed while connected gets
NOT_FOUND the same way and keeps its last configuration. Never another proxy's snapshot.

Security (given an authenticator and TLS material; ``--insecure`` gives neither): the port is TLS, and
before anything is answered the stream's ``authorization`` metadata must hold a dataplane token for
that node (UNAUTHENTICATED / PERMISSION_DENIED otherwise, with the reason). A stream ends with
UNAUTHENTICATED when its token expires or ``recheck_tokens`` finds it revoked.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from meshxds.security.auth import DataplaneAuthenticator, Grant, credential
from meshxds.security.cptls import ServerTLS
from meshxds.security.tokens import AuthError
from meshxds.xds.cache import SnapshotCache
from meshxds.xds.delta import DeltaStream
from meshxds.xds.sotw import SotwStream
from meshxds.xds.stream import NodeGone, ProtocolError, Stream
from meshxds.xds.wire import WireError, parse_delta_request, parse_request, request_node

log = logging.getLogger("meshxds.xds")

SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"
_EOF = object()
_WAKE = object()  # a snapshot change (see Wakeup)
_AUTH_CODES = {
    "UNAUTHENTICATED": grpc.StatusCode.UNAUTHENTICATED,
    "PERMISSION_DENIED": grpc.StatusCode.PERMISSION_DENIED,
}


class _Revoked:
    """Queued into a stream whose token no longer holds (expired, revoked, key removed): the stream ends."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class TokenRevoked(Exception):
    pass


@dataclass(frozen=True)
class Limits:
    """What one client may cost the server; past a limit its stream ends with a short status and a log line."""

    max_message: int = 4 << 20  # bytes of one request (grpc answers RESOURCE_EXHAUSTED beyond it)
    first_request_timeout: float = 15.0  # seconds for a new stream to send its first request
    queued_requests: int = 64  # requests read ahead per stream; then reading stops (HTTP/2 flow control)
    write_timeout: float = 60.0  # seconds a response may wait for the client to read; then the stream ends
    keepalive_time: float = 30.0  # seconds between HTTP/2 pings on a quiet connection...
    keepalive_timeout: float = 20.0  # ...and to wait for the answer: a half-open connection goes in under a minute

    def grpc_options(self) -> list[tuple[str, int]]:
        """The server's channel arguments: limits and keepalive only.

        No buffer-sizing arguments: ``python -m bench.memory`` compared ``grpc.http2.write_buffer_size``,
        ``grpc.http2.lookahead_bytes``, ``grpc.experimental.tcp_read_chunk_size`` and its min/max,
        ``grpc.http2.hpack_table_size.*`` and ``grpc.enable_channelz``, and none changes what a connected
        stream keeps (the TCP endpoint's pending read buffer follows its own estimate of the read size,
        not these). ``grpc.http2.bdp_probe`` stays at its default (on): off, each connection keeps more.
        The resource quota that would shrink read buffers under pressure is not settable from Python.
        """
        return [
            ("grpc.max_send_message_length", 256 << 20),
            ("grpc.max_receive_message_length", self.max_message),
            ("grpc.keepalive_time_ms", int(self.keepalive_time * 1000)),
            ("grpc.keepalive_timeout_ms", int(self.keepalive_timeout * 1000)),
            ("grpc.http2.max_pings_without_data", 0),
            # grpc core times a ping out after grpc.http2.ping_timeout_ms (default 60 s), not keepalive_timeout_ms.
            ("grpc.http2.ping_timeout_ms", int(self.keepalive_timeout * 1000)),
            # Envoy's bootstrap pings every 30 s (HTTP/2 keepalive); accept that instead of GOAWAY "too_many_pings".
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_recv_ping_interval_without_data_ms", 5_000),
            ("grpc.http2.max_ping_strikes", 0),
            ("grpc.so_reuseport", 0),
        ]


def unknown_node_message(node_id: str) -> str:
    mesh, _, name = node_id.partition(".")
    if not node_id:
        return "the first request of the stream carries no node.id; expected <mesh>.<dataplane name>"
    if not name:
        return f"node id {node_id!r} is not <mesh>.<dataplane name>"
    return f"unknown node {node_id!r}: no Dataplane {name!r} in mesh {mesh!r}"


class AdsServer:
    """Serves the snapshots of ``cache`` to Envoy over SotW and Delta ADS."""

    def __init__(
        self,
        cache: SnapshotCache,
        handlers: Sequence[Any] = (),
        limits: Limits | None = None,
        auth: DataplaneAuthenticator | None = None,
        tls: ServerTLS | None = None,
    ) -> None:
        """Without ``auth`` and ``tls`` the server is plaintext and trusts every node id (``--insecure``)."""
        self.cache = cache
        self.limits = limits or Limits()
        self.streams: set[Stream] = set()
        self.port = 0
        self.closing = False
        self.dropped = 0  # streams ended because the client did not read or did not speak
        self._wakeups: set[Wakeup] = set()
        self._server: Any = None
        # More services on the same gRPC server (HDS, the metrics sink), and who hears each accepted stream's
        # encoded Node (the service reads node metadata from it: the server itself only routes bytes).
        self.handlers: list[grpc.GenericRpcHandler] = list(handlers)
        self.on_node: Callable[[str, bytes], object] | None = None  # its result is ignored
        self.auth = auth
        self.tls = tls
        self._grants: dict[int, tuple[Grant, Inbox]] = {}
        self._auth_seen: tuple[tuple[str, int], ...] = auth.fingerprint() if auth else ()

    async def start(self, address: str = "127.0.0.1", port: int = 0) -> int:
        """Bind and start; returns the port (useful with ``port=0``)."""
        handler = grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "StreamAggregatedResources": grpc.stream_stream_rpc_method_handler(self.sotw),
                "DeltaAggregatedResources": grpc.stream_stream_rpc_method_handler(self.delta),
            },
        )
        self._server = grpc.aio.server(options=self.limits.grpc_options())
        self._server.add_generic_rpc_handlers((handler, *self.handlers))
        try:
            if self.tls is not None:
                creds = grpc.ssl_server_credentials([(self.tls.key_pem, self.tls.cert_pem)])
                self.port = self._server.add_secure_port(f"{address}:{port}", creds)
            else:
                self.port = self._server.add_insecure_port(f"{address}:{port}")
        except RuntimeError:
            self.port = 0
        if not self.port:
            self._server = None
            raise OSError(f"cannot listen on {address}:{port} (address in use?)")
        await self._server.start()
        log.info("ADS server listening on %s:%d", address, self.port)
        return self.port

    async def stop(self, grace: float | None = 0.5) -> None:
        """Stop accepting, end every stream with UNAVAILABLE (Envoy reconnects, to another replica if
        there is one), and give them ``grace`` seconds to go before the rest are cancelled."""
        if self._server is not None:
            self.closing = True
            for wakeup in list(self._wakeups):
                wakeup.set()
            await self._server.stop(grace)
            self._server = None

    async def sotw(self, requests: AsyncIterator[bytes], context: Any) -> None:
        await self._serve(SotwStream, requests, context)

    async def delta(self, requests: AsyncIterator[bytes], context: Any) -> None:
        await self._serve(DeltaStream, requests, context)

    async def _serve(self, kind: type[Stream], requests: AsyncIterator[bytes], context: Any) -> None:
        queue = Inbox(self.limits.queued_requests)
        reader = asyncio.create_task(_read(context, queue))
        try:
            try:
                first = await asyncio.wait_for(queue.get(), self.limits.first_request_timeout)
            except TimeoutError:
                self.dropped += 1
                log.warning(
                    "%s: no request within %g s; closing the stream", context.peer(), self.limits.first_request_timeout
                )
                await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "no request on the stream")
                return
            if first is _EOF:
                return
            try:
                parsed = parse_delta_request(first, True) if kind is DeltaStream else parse_request(first, True)
            except WireError as exc:
                log.warning("rejecting %s stream from %s: malformed request: %s", kind.protocol, context.peer(), exc)
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"malformed request: {exc}")
                return
            node_id = parsed.node_id or ""
            grant = None
            if self.auth is not None:
                try:
                    grant = self.auth.authenticate(node_id, credential(context.invocation_metadata() or ()))
                except AuthError as exc:
                    log.warning("refusing %s stream for %r from %s: %s", kind.protocol, node_id, context.peer(), exc)
                    await context.abort(_AUTH_CODES[exc.code], f"authentication failed: {exc}")
                    return
            if self.cache.get(node_id) is None:
                message = unknown_node_message(node_id)
                log.warning("rejecting %s stream from %s: %s", kind.protocol, context.peer(), message)
                code = grpc.StatusCode.NOT_FOUND if "." in node_id else grpc.StatusCode.INVALID_ARGUMENT
                await context.abort(code, message)
                return
            if self.on_node is not None:
                self.on_node(node_id, request_node(first, 1 if kind is DeltaStream else 2))
            # Handed over in a list that _loop empties: Envoy's first request carries its whole Node (tens of
            # KB with the extensions list), and a local here would keep it for the stream's life.
            handed, first = [first], None
            await self._loop(kind(node_id, self.cache.node_status(node_id)), handed, queue, context, grant)
        finally:
            reader.cancel()

    async def _loop(
        self, stream: Stream, first: list[bytes], queue: Inbox, context: Any, grant: Grant | None = None
    ) -> None:
        """Serve one accepted stream; ``first`` holds its first request (taken out, so it is not kept)."""
        node_id = stream.node_id
        wakeup = Wakeup(queue)
        self.cache.connect(node_id, stream.protocol, wakeup)
        self.streams.add(stream)
        self._wakeups.add(wakeup)
        expiry = None
        if grant is not None:  # the stream ends with its token (Kuma keeps it open: kumahq/kuma#3379)
            self._grants[id(stream)] = (grant, queue)
            seconds = (grant.expires - datetime.datetime.now(datetime.UTC)).total_seconds()
            expiry = asyncio.get_running_loop().call_later(
                max(0.0, seconds), queue.put_nowait, _Revoked("token expired")
            )
        log.info("%s connected (%s, stream %d)", node_id, stream.protocol, stream.stream_id)
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        try:
            request: Any = first.pop()
            while request is not _EOF:
                # Apply every request already queued before answering: only the latest state matters.
                while request is not None and request is not _EOF:
                    if isinstance(request, _Revoked):
                        raise TokenRevoked(request.reason)
                    if request is not _WAKE:
                        stream.handle(request, time.monotonic())
                    request = queue.get_nowait() if not queue.empty() else None
                if request is _EOF:
                    break
                if self.closing:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, "server shutting down; reconnect")
                wakeup.clear()
                for message in stream.responses(self.cache.get(node_id), time.monotonic()):
                    # A timer instead of wait_for (which runs every write in a task of its own).
                    timer = loop.call_later(self.limits.write_timeout, self._write_timed_out, node_id, task)
                    try:
                        await context.write(message)
                    finally:
                        timer.cancel()
                # The loop variable would keep the last response (up to megabytes) alive while the stream idles.
                message = b""
                request = await _next(queue, stream.deadline())
        except NodeGone:
            log.warning("%s: Dataplane removed from the input; closing its stream", node_id)
            await context.abort(grpc.StatusCode.NOT_FOUND, f"node {node_id!r}: Dataplane was removed")
        except (ProtocolError, WireError) as exc:
            log.warning("%s: bad request: %s", node_id, short(str(exc)))
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, short(str(exc)))
        except TokenRevoked as exc:
            log.warning("%s: closing its stream: %s", node_id, exc)
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"authentication failed: {exc}")
        finally:
            if expiry is not None:
                expiry.cancel()
            self._grants.pop(id(stream), None)
            self._wakeups.discard(wakeup)
            self.streams.discard(stream)
            self.cache.disconnect(node_id, wakeup)
            log.info("%s disconnected (stream %d)", node_id, stream.stream_id)

    def _write_timed_out(self, node_id: str, task: asyncio.Task[Any] | None) -> None:
        """A response waited ``write_timeout`` for the client to read it: end the stream.

        The timed-out write still holds the call's send slot, so no status can be sent (abort() fails);
        ending the handler as cancelled frees the stream without a traceback."""
        self.dropped += 1
        log.warning("%s: not reading its responses for %g s; closing the stream", node_id, self.limits.write_timeout)
        if task is not None:
            task.cancel()

    def recheck_tokens(self) -> int:
        """Re-check every live stream's token if a signing key or revocation list changed; the streams whose
        token no longer holds are closed with UNAUTHENTICATED. Returns how many were closed."""
        if self.auth is None:
            return 0
        seen = self.auth.fingerprint()
        if seen == self._auth_seen:
            return 0
        self._auth_seen = seen
        closed = 0
        for grant, queue in list(self._grants.values()):
            try:
                self.auth.recheck(grant)
            except AuthError as exc:
                queue.put_nowait(_Revoked(str(exc)))
                closed += 1
        return closed


def short(text: str, limit: int = 200) -> str:
    """A client-supplied value cut for a log line or a status message."""
    return text if len(text) <= limit else f"{text[:limit]}...({len(text) - limit} more characters)"


async def _read(context: Any, queue: Inbox) -> None:
    """Move requests into ``queue`` so the stream can wait on requests and snapshot changes together.

    At most ``queue.limit`` requests wait: then this stops reading, gRPC stops granting the client
    HTTP/2 window, and a client that floods requests without reading answers is held to that.

    It reads with ``context.read()`` rather than the handler's request iterator: grpc.aio's iterator keeps
    the last request alive while it waits for the next one, and an idle Envoy's last request (an EDS
    subscription to every cluster) is tens of KB per stream."""
    try:
        while True:
            message = await context.read()
            if message is grpc.aio.EOF:
                break
            await queue.put_request(message)
            del message  # not kept alive while waiting for the next request
    except (grpc.RpcError, asyncio.CancelledError):
        pass
    finally:
        queue.put_nowait(_EOF)


class Inbox:
    """A stream's request queue: requests are bounded (the reader waits for a free slot), while snapshot
    wakeups and end-of-stream always go in."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._slots = asyncio.Semaphore(limit)

    async def put_request(self, message: bytes) -> None:
        await self._slots.acquire()
        self._queue.put_nowait(message)

    def put_nowait(self, item: Any) -> None:
        self._queue.put_nowait(item)

    def empty(self) -> bool:
        return self._queue.empty()

    def _took(self, item: Any) -> Any:
        if item is not _WAKE and item is not _EOF:
            self._slots.release()
        return item

    def get_nowait(self) -> Any:
        return self._took(self._queue.get_nowait())

    async def get(self) -> Any:
        return self._took(await self._queue.get())


class Wakeup:
    """A snapshot change as an item in the stream's request queue, so a stream waits on requests and
    snapshot changes with one ``queue.get()`` instead of two tasks and ``asyncio.wait`` per wakeup.
    At most one token is pending; ``clear()`` re-arms it before the stream computes its responses."""

    def __init__(self, queue: Inbox) -> None:
        self._queue = queue
        self._pending = False

    def set(self) -> None:
        if not self._pending:
            self._pending = True
            self._queue.put_nowait(_WAKE)

    def clear(self) -> None:
        self._pending = False


async def _next(queue: Inbox, deadline: float | None) -> Any:
    """The next request, or None when the snapshot changed or ``deadline`` (monotonic) passed."""
    if not queue.empty():
        item = queue.get_nowait()
    elif deadline is None:
        item = await queue.get()
    else:
        try:
            item = await asyncio.wait_for(queue.get(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            return None
    return None if item is _WAKE else item
