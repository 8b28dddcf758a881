"""SSM answered in-process, through botocore's public ``before-send`` event.

As httpx's ``MockTransport`` does for httpx: the client builds, signs and would send
every request as usual, and a handler on ``before-send`` answers it instead of the
network. Retries, the pacer, the ``before-parse`` fast path and error parsing all
run; no socket opens. Tests about HTTP itself use the emulator instead.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from patchframe.aws import client_config

#: An answer: HTTP status and JSON body.
Answer = tuple[int, dict[str, Any]]
#: What a request asked: the operation and its JSON body.
Request = tuple[str, dict[str, Any]]

REGION = "eu-west-1"
# Never contacted: if a request escaped the handler, it would fail here, locally.
NOWHERE = "http://127.0.0.1:9"


def page(patches: Sequence[dict[str, Any]], token: str | None = None) -> Answer:
    """A DescribeInstancePatches page as the wire carries it."""
    body: dict[str, Any] = {"Patches": list(patches)}
    if token:
        body["NextToken"] = token
    return 200, body


def error(code: str, message: str = "", status: int = 400) -> Answer:
    """An error answer as the SSM JSON protocol spells it."""
    return status, {"__type": code, "message": message}


@functools.cache
def _session() -> boto3.Session:
    # One session for every mock client: a new one would load the SSM model again.
    return boto3.Session(
        aws_access_key_id="AKIAMOCK", aws_secret_access_key="mock", region_name=REGION
    )


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


class MockSSM:
    """Answers the requests of the clients it is attached to, and records them.

    ``answers`` is a list, answered in order (a request beyond it fails the test),
    or a function of the request returning the answer.
    """

    def __init__(self, answers: Sequence[Answer] | Callable[[Request], Answer]) -> None:
        self._script = None if callable(answers) else list(answers)
        self._answer = answers if callable(answers) else None
        self._lock = threading.Lock()
        self.requests: list[Request] = []

    def client(self, **config: Any) -> Any:
        """A client configured as patchframe's own, answered here.

        ``config`` goes to botocore's Config, merged over patchframe's as
        ``make_client(botocore_config=...)`` does.
        """
        session = _session()
        merged = client_config(boto3_session=session, botocore_config=Config(**config))
        return self.attach(session.client("ssm", endpoint_url=NOWHERE, config=merged))

    def attach(self, client: Any) -> Any:
        """Answer ``client``'s requests from now on; return it."""
        client.meta.events.register("before-send", self._send)
        return client

    @property
    def operations(self) -> list[str]:
        return [operation for operation, _ in self.requests]

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [body for _, body in self.requests]

    def unused(self) -> int:
        """Scripted answers not asked for yet."""
        return len(self._script) if self._script is not None else 0

    def _send(self, request: Any, **_: Any) -> AWSResponse:
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else target
        asked: Request = (target.rsplit(".", 1)[-1], json.loads(request.body or b"{}"))
        with self._lock:
            self.requests.append(asked)
            if self._script is not None:
                assert self._script, f"no answer left for {asked}"
                status, body = self._script.pop(0)
        if self._answer is not None:
            status, body = self._answer(asked)
        headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": "mock"}
        return AWSResponse(request.url, status, headers, _Body(json.dumps(body).encode()))
