"""A lean HTTP/1.1 sender for DescribeInstancePatches pages.

A fleet load is thousands of small requests, and for each one botocore's HTTP
stack (its session wrapper, urllib3's pool, http.client and its e-mail header
parser) costs more client CPU than signing and parsing put together. botocore's
public ``before-send`` event lets a handler send the prepared, signed request
itself and hand back the response; botocore then parses it, retries it and
raises its errors exactly as usual.

:class:`LeanSender` does that with one keep-alive socket per thread and host:
write the request, read the status line, the headers and a Content-Length or
chunked body. It steps aside (the handler returns None, botocore sends as
usual) whenever the client is set up in a way it does not handle: a proxy or a
client certificate. TLS is verified as botocore would: its CA bundle, or
verification off where the client turned it off. Socket failures become
botocore's own connection errors, so its retry policy sees them as it would.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import (
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
    SSLError,
)
from botocore.httpsession import get_cert_path

__all__ = ["LeanSender"]

_MAX_HEADER_BYTES = 65536


class _Body:
    """What AWSResponse expects of a raw response: ``stream()``."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


class _Connection:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def fill(self) -> None:
        chunk = self.sock.recv(262144)
        if not chunk:
            raise ConnectionResetError("the server closed the connection")
        self.buffer += chunk

    def read_until(self, marker: bytes) -> bytes:
        while (end := self.buffer.find(marker)) < 0:
            if len(self.buffer) > _MAX_HEADER_BYTES:
                raise ConnectionResetError("response header too long")
            self.fill()
        head, self.buffer = self.buffer[:end], self.buffer[end + len(marker) :]
        return head

    def read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self.fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def read_chunked(self) -> bytes:
        parts = []
        while size := int(self.read_until(b"\r\n").split(b";")[0], 16):
            parts.append(self.read_exactly(size))
            self.read_exactly(2)
        while self.read_until(b"\r\n"):  # trailers, then the empty line
            pass
        return b"".join(parts)


class LeanSender:
    """Sends a client's signed requests over its own keep-alive sockets.

    Parameters
    ----------
    client
        The botocore client whose settings (timeouts, TLS verification) to follow.

    Examples
    --------
    >>> import patchframe as pf
    >>> sender = LeanSender(pf.sample_client())
    >>> sender.usable
    True
    """

    def __init__(self, client: Any) -> None:
        config = client.meta.config
        self._connect_timeout = config.connect_timeout
        self._read_timeout = config.read_timeout
        self._local = threading.local()
        self._tls: ssl.SSLContext | None = None
        # botocore keeps its HTTP settings private; read what is needed once,
        # and step aside for anything this sender does not do.
        http = getattr(getattr(client, "_endpoint", None), "http_session", None)
        proxies = getattr(http, "_proxy_config", None)
        endpoint = client.meta.endpoint_url
        self.usable = (
            http is not None
            and proxies is not None
            and not proxies.proxy_url_for(endpoint)
            and getattr(http, "_cert_file", None) is None
            and urlsplit(endpoint).scheme in ("http", "https")
        )
        self._verify = getattr(http, "_verify", True)

    def send(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        """Send one prepared request; None leaves it to botocore."""
        if not self.usable or request.stream_output:
            return None
        url = urlsplit(request.url)
        target = (url.path or "/") + (f"?{url.query}" if url.query else "")
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, bytes):
            return None
        # Where botocore holds the headers in an e-mail message, raw_items skips
        # the e-mail policy's per-header parsing; the values are the signed ones.
        items = getattr(request.headers, "raw_items", request.headers.items)
        headers = [(k, _text(v)) for k, v in items()]
        lines = [f"{request.method} {target} HTTP/1.1", f"Host: {url.netloc}"]
        lines += [f"{k}: {v}" for k, v in headers if k.lower() not in ("host", "content-length")]
        lines.append(f"Content-Length: {len(body)}")
        message = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        for fresh in (False, True):
            connection, reused = self._connection(url.scheme, url.hostname or "", url.port, fresh)
            try:
                connection.sock.sendall(message)
                return self._response(request.url, connection)
            except ssl.SSLCertVerificationError as err:
                self._drop(url.netloc)
                raise SSLError(endpoint_url=request.url, error=err) from err
            except TimeoutError as err:
                self._drop(url.netloc)
                raise ReadTimeoutError(endpoint_url=request.url, error=err) from err
            except OSError as err:
                self._drop(url.netloc)
                # A kept-alive socket the server has closed fails at once:
                # the request never arrived, so send it once more on a new one.
                if (
                    reused
                    and not fresh
                    and isinstance(err, ConnectionResetError | BrokenPipeError)
                ):
                    continue
                raise ConnectionClosedError(endpoint_url=request.url) from err
        raise AssertionError("unreachable")  # pragma: no cover

    def _response(self, url: str, connection: _Connection) -> AWSResponse:
        head = connection.read_until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            data = connection.read_chunked()
        else:
            data = connection.read_exactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            self._drop(urlsplit(url).netloc)
        # AWSResponse copies the headers into its own case-insensitive dict.
        return AWSResponse(url, status, headers, _Body(data))  # type: ignore[arg-type]

    def _connection(
        self, scheme: str, host: str, port: int | None, fresh: bool
    ) -> tuple[_Connection, bool]:
        pool: dict[str, _Connection] = self._local.__dict__.setdefault("pool", {})
        netloc = f"{host}:{port}" if port else host
        if not fresh and (known := pool.get(netloc)) is not None:
            return known, True
        port = port or (443 if scheme == "https" else 80)
        try:
            sock = socket.create_connection((host, port), timeout=self._connect_timeout)
        except OSError as err:
            raise EndpointConnectionError(endpoint_url=f"{scheme}://{netloc}", error=err) from err
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(self._read_timeout)
        if scheme == "https":
            sock = self._tls_context().wrap_socket(sock, server_hostname=host)
        pool[netloc] = _Connection(sock)
        return pool[netloc], False

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            if self._verify is False:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            else:
                context = ssl.create_default_context(cafile=get_cert_path(self._verify))
            self._tls = context
        return self._tls

    def _drop(self, netloc: str) -> None:
        pool: dict[str, _Connection] = self._local.__dict__.setdefault("pool", {})
        connection = pool.pop(netloc, None)
        if connection is not None:
            connection.sock.close()


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value
