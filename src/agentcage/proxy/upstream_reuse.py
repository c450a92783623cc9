"""Keep upstream TLS connections across the agent's connections, where that is safe.

mitmproxy opens a server connection per client connection, so a client that opens
a connection per request (Debian's npm 9 opens a CONNECT tunnel per request) pays
a TLS handshake with the upstream every time, on top of the one with the proxy.
`UpstreamReuse` runs after every request hook: a request the chain allowed that is
safe to send again (GET, HEAD or OPTIONS without a body, HTTP/1.1, HTTPS, explicit
proxy mode, no Upgrade, no `Connection: close`) is sent over an idle connection
from the pool, and the answer becomes `flow.response`, so mitmproxy opens no
server connection and the response passes every response hook as before.

The pool never decides anything. Connections are kept per `ReuseKey`: host, port,
SNI, the address the name resolved to and was vetted for, the upstream trust
options and the policy in force, so a reload or another DNS answer never reuses
an older connection. A response that would be streamed (`streaming.would_stream`)
or is not framed by a length is not buffered here: its connection is closed and
the request is left to mitmproxy, which sends it again (it is idempotent) and
streams it as usual. So is every error: mitmproxy's own path then connects,
verifies and reports exactly as without the pool.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from dataclasses import dataclass

import certifi
from mitmproxy import ctx, http
from mitmproxy.net.http import http1
from mitmproxy.proxy.mode_specs import RegularMode

from agentcage.proxy.flow_state import flow_state
from agentcage.proxy.flows import block_response
from agentcage.proxy.pooled_responses import NotReusable, ResponseReader, read_response
from agentcage.proxy.runtime import RuntimeHolder

logger = logging.getLogger(__name__)
IDLE_SECONDS = 15.0
MAX_IDLE_PER_KEY = 8
CONNECT_SECONDS = 30.0
# A slower answer (a long poll) is left to mitmproxy, which waits as long as it takes.
RESPONSE_SECONDS = 120.0
MAX_LEFT = 1024
REUSABLE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_TLS_VERSIONS = {
    "TLS1": ssl.TLSVersion.TLSv1,
    "TLS1_1": ssl.TLSVersion.TLSv1_1,
    "TLS1_2": ssl.TLSVersion.TLSv1_2,
    "TLS1_3": ssl.TLSVersion.TLSv1_3,
}


@dataclass(frozen=True, slots=True)
class ReuseKey:
    """Everything a kept connection was opened and checked for."""

    host: str
    port: int
    sni: str
    address: str
    ca_file: str
    ca_dir: str | None
    min_version: str
    max_version: str
    generation: int  # of the policy in force: a reload starts a fresh pool


@dataclass(slots=True)
class Kept:
    transport: asyncio.Transport
    reader: ResponseReader
    idle_since: float = 0.0

    def usable(self, now: float) -> bool:
        # Bytes left over after a response belong to no request: never send another.
        return (
            now - self.idle_since < IDLE_SECONDS
            and not self.reader.at_eof()
            and not self.reader.buffer
            and not self.transport.is_closing()
        )

    def close(self) -> None:
        self.transport.close()


class IdleConnections:
    """Idle upstream connections by key: at most `MAX_IDLE_PER_KEY`, `IDLE_SECONDS` old."""

    def __init__(self) -> None:
        self._idle: dict[ReuseKey, list[Kept]] = {}
        self._swept = 0.0

    def take(self, key: ReuseKey) -> Kept | None:
        now = time.monotonic()
        self._sweep(now)
        kept = self._idle.get(key, [])
        while kept:
            conn = kept.pop()
            if conn.usable(now):
                return conn
            conn.close()
        return None

    def give_back(self, key: ReuseKey, conn: Kept) -> None:
        now = time.monotonic()
        conn.idle_since = now
        kept = self._idle.setdefault(key, [])
        kept.append(conn)
        while len(kept) > MAX_IDLE_PER_KEY:
            kept.pop(0).close()
        self._sweep(now)

    def close_all(self) -> None:
        for kept in self._idle.values():
            for conn in kept:
                conn.close()
        self._idle.clear()

    def count(self) -> int:
        return sum(len(kept) for kept in self._idle.values())

    def _sweep(self, now: float) -> None:
        if now - self._swept < 1.0:
            return
        self._swept = now
        for key in list(self._idle):
            alive = []
            for conn in self._idle[key]:
                if conn.usable(now):
                    alive.append(conn)
                else:
                    conn.close()
            if alive:
                self._idle[key] = alive
            else:
                del self._idle[key]


def reusable(flow: http.HTTPFlow) -> bool:
    """Whether the pool may carry this request (the chain has allowed it)."""
    req = flow.request
    if flow.response or flow.error or not flow.live or flow_state(flow).gate is None:
        return False
    if not isinstance(flow.client_conn.proxy_mode, RegularMode):
        return False  # transparent and other listeners keep mitmproxy's connection
    if req.scheme != "https" or req.http_version != "HTTP/1.1" or req.stream:
        return False
    if req.method not in REUSABLE_METHODS or req.raw_content or req.trailers:
        return False
    if "upgrade" in req.headers or "transfer-encoding" in req.headers:
        return False
    # A length with no body would leave the kept connection waiting for bytes that the
    # next request's head would then supply.
    if req.headers.get_all("content-length") not in ([], ["0"]):
        return False
    tokens = {t.strip().lower() for t in req.headers.get("connection", "").split(",")}
    return not tokens & {"close", "upgrade"}


def _resource(flow: http.HTTPFlow) -> tuple[str, int, str]:
    return (flow.request.host, flow.request.port, flow.request.path.split("?", 1)[0])


class UpstreamReuse:
    """Sends allowed, repeatable requests over pooled upstream connections."""

    def __init__(self, holder: RuntimeHolder) -> None:
        self._holder = holder
        self._pool = IdleConnections()
        self._contexts: dict[tuple[str, str | None, str, str], ssl.SSLContext] = {}
        # Resources whose last response this pool could not carry, oldest first.
        self._left: dict[tuple[str, int, str], None] = {}
        self._runtime = holder.current
        self._generation = 0

    @property
    def idle(self) -> int:
        return self._pool.count()

    async def request(self, flow: http.HTTPFlow) -> None:
        try:
            if ctx.options.ssl_insecure or not reusable(flow) or self._left_before(flow):
                return
            key = await self._key(flow)
            response = await self._exchange(key, flow.request)
        except NotReusable as exc:
            # The upstream has seen this request; mitmproxy sends it again. Such
            # resources (event streams, large downloads) go to mitmproxy from now on.
            self._left[_resource(flow)] = None
            while len(self._left) > MAX_LEFT:
                del self._left[next(iter(self._left))]
            logger.debug("%s goes by mitmproxy's own connection: %s", flow.id, exc)
            return
        except Exception as exc:
            logger.debug("%s goes by mitmproxy's own connection: %r", flow.id, exc)
            return
        if flow.live and flow.response is None and not flow.error:
            flow.response = response
            flow_state(flow).pooled = True

    def _left_before(self, flow: http.HTTPFlow) -> bool:
        return _resource(flow) in self._left

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        resp = flow.response
        if resp is not None and resp.stream and flow_state(flow).pooled:
            # mitmproxy sends a response an addon set whole, never through `stream`:
            # the scrub would be skipped. `read_response` never lets this happen.
            reason = "the response could not be checked for secrets: streamed on a kept connection"
            flow.response = block_response(502, reason, "scrub", flow.request.host)
            flow_state(flow).response_block = ("scrub", reason)

    def done(self) -> None:
        self._pool.close_all()

    async def _key(self, flow: http.HTTPFlow) -> ReuseKey:
        runtime = self._holder.current
        if runtime is not self._runtime:
            # Reloaded: nothing opened under the old policy is used again.
            self._runtime, self._generation = runtime, self._generation + 1
            self._pool.close_all()
        req = flow.request
        # The gate vetted the name; this is the address connected to, as in `pinning`.
        address = runtime.guard.pick(req.host, await runtime.resolver.resolve(req.host))
        opts = ctx.options
        return ReuseKey(
            host=req.host,
            port=req.port,
            sni=flow.client_conn.sni or req.host,  # mitmproxy's choice for the upstream SNI
            address=str(address),
            ca_file=opts.ssl_verify_upstream_trusted_ca or certifi.where(),
            ca_dir=opts.ssl_verify_upstream_trusted_confdir,
            min_version=opts.tls_version_server_min,
            max_version=opts.tls_version_server_max,
            generation=self._generation,
        )

    async def _exchange(self, key: ReuseKey, req: http.Request) -> http.Response:
        conn = self._pool.take(key)
        if conn is not None:
            try:
                return await self._round_trip(key, conn, req)
            except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
                # Closed by the upstream while idle: once more on a new connection.
                logger.debug("kept connection to %s failed: %r", key.host, exc)
        return await self._round_trip(key, await self._connect(key), req)

    async def _round_trip(self, key: ReuseKey, conn: Kept, req: http.Request) -> http.Response:
        try:
            # A head of a few hundred bytes: the transport sends it or buffers it whole.
            conn.transport.write(http1.assemble_request_head(req))  # type: ignore[no-untyped-call]
            async with asyncio.timeout(RESPONSE_SECONDS):
                response = await read_response(conn.reader, req, _body_limit())
        except BaseException:
            conn.close()
            raise
        if http1.connection_close(response.http_version, response.headers):  # type: ignore[no-untyped-call]
            conn.close()
        else:
            self._pool.give_back(key, conn)
        return response

    async def _connect(self, key: ReuseKey) -> Kept:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(CONNECT_SECONDS):
            transport, reader = await loop.create_connection(
                ResponseReader,
                key.address,
                key.port,
                ssl=self._context(key),
                server_hostname=key.sni,
            )
        assert isinstance(transport, asyncio.Transport)
        return Kept(transport, reader)

    def _context(self, key: ReuseKey) -> ssl.SSLContext:
        """What mitmproxy checks upstream: its CA options, the SNI as the name, no CN."""
        settings = (key.ca_file, key.ca_dir, key.min_version, key.max_version)
        made = self._contexts.get(settings)
        if made is None:
            made = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, hostname checked
            made.hostname_checks_common_name = False
            made.minimum_version = _TLS_VERSIONS.get(key.min_version, ssl.TLSVersion.TLSv1_2)
            made.maximum_version = _TLS_VERSIONS.get(
                key.max_version, ssl.TLSVersion.MAXIMUM_SUPPORTED
            )
            made.load_verify_locations(cafile=key.ca_file, capath=key.ca_dir)
            made.set_alpn_protocols(["http/1.1"])
            self._contexts[settings] = made
        return made


def _body_limit() -> int | None:
    from mitmproxy.utils import human

    limit = ctx.options.body_size_limit
    return human.parse_size(limit) if limit else None
