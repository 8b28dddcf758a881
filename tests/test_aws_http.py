"""Odd HTTP servers: each answer gives the right rows or a patchframe error, never another's.

Each server is a few lines on 127.0.0.1 that answers DescribeInstancePatches with raw
bytes: a ``100 Continue`` first, a body delimited by closing the connection, a garbage
status line, a negative or overstated Content-Length, a body cut short, an answer that is
not a JSON page, a self-signed certificate. Every case loads two nodes in turn on one
client, so an answer left over on a kept-alive connection would show up as rows of the
wrong node.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from botocore.config import Config

import patchframe as pf
from patchframe.aws import make_client
from patchframe.exceptions import AWSRequestError

NODES = ("i-0000000a", "i-0000000b")
#: An answer: the raw bytes for the node asked about, and whether to keep the connection.
Answer = Callable[[str], tuple[bytes, bool]]


def page(node: str) -> bytes:
    """A page whose rows say which node they were sent for."""
    patches = [
        {"KBId": f"KB-{node}-{i}", "Title": "T", "State": "Installed", "InstalledTime": 1.7e9}
        for i in range(3)
    ]
    return json.dumps({"Patches": patches}).encode()


def head(*lines: str, status: str = "HTTP/1.1 200 OK") -> bytes:
    fields = [status, "Content-Type: application/x-amz-json-1.1", *lines]
    return ("\r\n".join(fields) + "\r\n\r\n").encode()


def framed(body: bytes) -> bytes:
    return head(f"Content-Length: {len(body)}") + body


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so that leftovers would reach the next call
    server: _OddServer

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.asked.append(body["InstanceId"])
        reply, keep_open = self.server.answer(body["InstanceId"])
        self.wfile.write(reply)
        self.wfile.flush()
        self.close_connection = not keep_open

    def log_message(self, *args: Any) -> None:
        pass  # no access log in the test output


class _OddServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, answer: Answer, tls: ssl.SSLContext | None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answer = answer
        self.asked: list[str] = []
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)

    @property
    def url(self) -> str:
        scheme = "https" if isinstance(self.socket, ssl.SSLSocket) else "http"
        return f"{scheme}://127.0.0.1:{self.server_address[1]}"


def serve(
    answer: Answer, monkeypatch: pytest.MonkeyPatch, tls: ssl.SSLContext | None = None
) -> _OddServer:
    """Serve ``answer`` and point boto3's environment at it; stop the server at the end."""
    server = _OddServer(answer, tls)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    return server


@pytest.fixture
def stop_servers() -> Iterator[list[_OddServer]]:
    servers: list[_OddServer] = []
    yield servers
    for server in servers:
        server.shutdown()
        server.server_close()


def load_both() -> list[pd.DataFrame | AWSRequestError]:
    """Each node's frame, or the patchframe error loading it raised, on one client."""
    client = make_client(
        botocore_config=Config(
            retries={"mode": "standard", "total_max_attempts": 2},
            connect_timeout=2,
            read_timeout=2,
        )
    )
    outcomes: list[pd.DataFrame | AWSRequestError] = []
    for node in NODES:
        try:
            outcomes.append(pf.load_instance_patches(node, client=client, page_size=50))
        except AWSRequestError as err:
            outcomes.append(err)
    return outcomes


def assert_rows(outcome: pd.DataFrame | AWSRequestError, node: str) -> None:
    assert isinstance(outcome, pd.DataFrame), outcome
    assert outcome["kb_id"].astype(str).tolist() == [f"KB-{node}-{i}" for i in range(3)]
    assert outcome["instance_id"].astype(str).unique().tolist() == [node]


def assert_error(outcome: pd.DataFrame | AWSRequestError, node: str, cause: str | None) -> None:
    assert isinstance(outcome, AWSRequestError), outcome
    assert outcome.instance_id == node and node in str(outcome)
    assert outcome.operation == "DescribeInstancePatches"
    if cause is None:  # nothing raised: patchframe saw the page is not one
        assert outcome.__cause__ is None and outcome.code == "MalformedResponse"
    else:
        assert type(outcome.__cause__).__name__ == cause, repr(outcome.__cause__)


#: What a case must give: the right rows, else an error with that __cause__ (by name).
ROWS = "rows"

# Each case: the answer, and what it must give: ROWS, or a patchframe error whose __cause__
# is the named exception (botocore's own, or the JSON decoder's), or None for no cause.
CASES: dict[str, tuple[Answer, str | None]] = {
    "plain": (lambda n: (framed(page(n)), True), ROWS),
    "100 Continue first": (
        lambda n: (b"HTTP/1.1 100 Continue\r\n\r\n" + framed(page(n)), True),
        ROWS,
    ),
    # A copy in the same write as the answer: read into the first answer's buffer and
    # dropped with it, never taken for the next call's answer.
    "the answer sent twice": (lambda n: (framed(page(n)) * 2, True), ROWS),
    "delimited by closing": (lambda n: (head("Connection: close") + page(n), False), ROWS),
    # urllib3 reads a negative length as none given: to the close.
    "negative Content-Length": (lambda n: (head("Content-Length: -5") + page(n), False), ROWS),
    "garbage status line": (
        lambda n: (head(status="SPDY/9 ?? hello") + page(n), False),
        "ConnectionClosedError",
    ),
    # botocore reads to the close without checking the length (enforce_content_length off)...
    "Content-Length beyond the body": (
        lambda n: (head(f"Content-Length: {len(page(n)) + 100}") + page(n), False),
        ROWS,
    ),
    # ... so a page cut short is caught by the JSON decoder.
    "Content-Length beyond a body cut short": (
        lambda n: (head(f"Content-Length: {len(page(n))}") + page(n)[:40], False),
        "JSONDecodeError",
    ),
    "body cut short by closing": (
        lambda n: (head("Connection: close") + page(n)[:40], False),
        "JSONDecodeError",
    ),
    "body not JSON": (lambda n: (framed(b"<html>busy</html>"), True), "JSONDecodeError"),
    "body not UTF-8": (lambda n: (framed(b'{"Patches": "\xff\xfe"}'), True), "UnicodeDecodeError"),
    "JSON of the wrong shape": (lambda n: (framed(b'["Patches"]'), True), None),
    "NextToken of the wrong shape": (
        lambda n: (framed(b'{"Patches": [], "NextToken": 7}'), True),
        None,
    ),
    "patches of the wrong shape": (
        lambda n: (framed(b'{"Patches": [1, 2]}'), True),
        None,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_an_odd_answer_gives_the_right_rows_or_a_patchframe_error(
    case: str, monkeypatch: pytest.MonkeyPatch, stop_servers: list[_OddServer]
) -> None:
    answer, cause = CASES[case]
    server = serve(answer, monkeypatch)
    stop_servers.append(server)
    for node, outcome in zip(NODES, load_both(), strict=True):
        if cause == ROWS:
            assert_rows(outcome, node)
        else:
            assert_error(outcome, node, cause)
    if cause == ROWS:
        assert server.asked == list(NODES)  # one request each, answered once


# A self-signed certificate, made at test time.


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no authority signed, and its key."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    try:
        _make_certificate(cert, key)
    except ImportError:
        try:
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                 "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                 "-keyout", str(key), "-out", str(cert)],
                check=True,
                capture_output=True,
            )  # fmt: skip
        except (OSError, subprocess.CalledProcessError) as err:
            pytest.skip(f"neither the cryptography package nor openssl can make one: {err}")
    return cert, key


def _make_certificate(cert: Path, key: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def test_a_self_signed_certificate_is_a_patchframe_error(
    self_signed: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    stop_servers: list[_OddServer],
) -> None:
    answer: Answer = lambda n: (framed(page(n)), True)  # noqa: E731
    stop_servers.append(serve(answer, monkeypatch, tls_context(*self_signed)))
    for node, outcome in zip(NODES, load_both(), strict=True):
        assert_error(outcome, node, "SSLError")
        assert "certificate" in str(outcome)


def test_a_self_signed_certificate_the_user_trusts_gives_the_rows(
    self_signed: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    stop_servers: list[_OddServer],
) -> None:
    answer: Answer = lambda n: (framed(page(n)), True)  # noqa: E731
    stop_servers.append(serve(answer, monkeypatch, tls_context(*self_signed)))
    monkeypatch.setenv("AWS_CA_BUNDLE", str(self_signed[0]))
    for node, outcome in zip(NODES, load_both(), strict=True):
        assert_rows(outcome, node)
