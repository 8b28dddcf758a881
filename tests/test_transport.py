"""The lean sender: HTTP/1.1 framing, kept-alive sockets, botocore's errors."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError

import patchframe as pf
from patchframe._transport import LeanSender


class Script:
    """A one-thread HTTP server answering each request with the next scripted bytes."""

    def __init__(self, answers: list[bytes | None], *, close_after: int | None = None) -> None:
        self.answers = answers
        self.close_after = close_after
        self.requests: list[bytes] = []
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while self.answers:
            conn, _ = self.sock.accept()
            self.connections += 1
            with conn:
                while self.answers:
                    data = conn.recv(65536)
                    if not data:
                        break
                    self.requests.append(data)
                    answer = self.answers.pop(0)
                    if answer is None:  # hang up without answering
                        break
                    conn.sendall(answer)
                    if b"Connection: close" in answer or len(self.requests) == self.close_after:
                        break


@pytest.fixture
def client() -> Iterator[Any]:
    yield boto3.client(
        "ssm",
        region_name="eu-west-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=Config(proxies={}),
    )


def request(url: str) -> Any:
    return AWSRequest(method="POST", url=url, data=b'{"a": 1}', headers={"X-Test": "1"}).prepare()


def ok(body: bytes, *extra: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\n" + b"".join(extra)
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


def test_sends_the_signed_headers_and_reads_content_length(client: Any) -> None:
    server = Script([ok(b'{"Patches": []}'), ok(b"{}")])
    sender = LeanSender(client)
    first = sender.send(request(server.url))
    second = sender.send(request(server.url))
    assert first is not None and second is not None
    assert (first.status_code, first.content) == (200, b'{"Patches": []}')
    assert first.headers["content-type"] == "application/x-amz-json-1.1"
    assert second.content == b"{}"
    assert server.connections == 1  # kept alive
    assert b"X-Test: 1" in server.requests[0] and server.requests[0].endswith(b'{"a": 1}')


def test_reads_chunked_bodies(client: Any) -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n"
    )
    server = Script([chunked])
    answer = LeanSender(client).send(request(server.url))
    assert answer is not None and answer.content == b"hello world"


def test_connection_close_is_honoured(client: Any) -> None:
    server = Script([ok(b"1", b"Connection: close\r\n"), ok(b"2")])
    sender = LeanSender(client)
    assert sender.send(request(server.url)).content == b"1"  # type: ignore[union-attr]
    assert sender.send(request(server.url)).content == b"2"  # type: ignore[union-attr]
    assert server.connections == 2


def test_a_kept_alive_socket_the_server_closed_is_replaced_once(client: Any) -> None:
    server = Script([ok(b"1"), ok(b"2")], close_after=1)
    sender = LeanSender(client)
    assert sender.send(request(server.url)).content == b"1"  # type: ignore[union-attr]
    assert sender.send(request(server.url)).content == b"2"  # type: ignore[union-attr]
    assert server.connections == 2 and len(server.requests) == 2


def test_a_hang_up_is_botocores_connection_closed_error(client: Any) -> None:
    server = Script([None])
    with pytest.raises(ConnectionClosedError):
        LeanSender(client).send(request(server.url))


def test_nobody_listening_is_botocores_endpoint_connection_error(client: Any) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{unused.getsockname()[1]}"
    with pytest.raises(EndpointConnectionError):
        LeanSender(client).send(request(url))


def test_steps_aside_for_a_proxy() -> None:
    proxied = boto3.client(
        "ssm",
        region_name="eu-west-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=Config(proxies={"https": "http://proxy.invalid:3128"}),
    )
    sender = LeanSender(proxied)
    assert not sender.usable
    assert sender.send(request("https://ssm.eu-west-1.amazonaws.com/")) is None


def test_fast_and_stock_paths_agree_through_the_emulator() -> None:
    client = pf.sample_client()
    node = "i-0e1f2a3b4c5d6e7f8"
    stock = [
        p["KBId"]
        for page in client.get_paginator("describe_instance_patches").paginate(
            InstanceId=node, PaginationConfig={"PageSize": 100}
        )
        for p in page["Patches"]
    ]
    fast = pf.load_instance_patches(node, client=client)
    assert fast["kb_id"].tolist() == stock
