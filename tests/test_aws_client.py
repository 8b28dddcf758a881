"""The client factory: patchframe's defaults under the user's own configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from mock_ssm import NOWHERE, MockSSM, error, page

import patchframe as pf
from patchframe.aws import client_config, profile_session
from patchframe.aws._client import PAGE_KEY, fast_patch_pages, make_sts_client
from patchframe.exceptions import ValidationError

DEFAULT_RETRIES = {"mode": "standard", "total_max_attempts": 11}
KEYS = {"aws_access_key_id": "AKIAMOCK", "aws_secret_access_key": "mock"}
NODE = "i-0123456789abcdef0"


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> boto3.Session:
    """A session with no AWS configuration, bound to an address nothing answers."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", NOWHERE)
    return boto3.Session(region_name="eu-west-1", **KEYS)


def retries(client: Any) -> dict[str, object]:
    return dict(client.meta.config.retries)


def test_patchframe_defaults(session: boto3.Session) -> None:
    assert client_config(boto3_session=session).retries == DEFAULT_RETRIES
    client = pf.make_client(boto3_session=session, max_pool_connections=7)
    config = client.meta.config
    assert retries(client) == DEFAULT_RETRIES
    assert (config.connect_timeout, config.read_timeout) == (10, 60)
    assert config.max_pool_connections == 7
    assert "patchframe" in config.user_agent_extra


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({"AWS_RETRY_MODE": "adaptive"}, {"mode": "adaptive", "total_max_attempts": 11}),
        ({"AWS_MAX_ATTEMPTS": "3"}, {"mode": "standard", "total_max_attempts": 3}),
        (
            {"AWS_RETRY_MODE": "legacy", "AWS_MAX_ATTEMPTS": "2"},
            {"mode": "legacy", "total_max_attempts": 2},
        ),
    ],
)
def test_the_users_retry_variables_win(
    session: boto3.Session,
    monkeypatch: pytest.MonkeyPatch,
    environment: dict[str, str],
    expected: dict[str, object],
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert retries(pf.make_client(boto3_session=session)) == expected
    assert retries(make_sts_client(boto3_session=session)) == expected
    assert retries(pf.sample_client()) == expected


def test_the_profiles_retry_settings_win(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(
        "[profile careful]\nregion = eu-west-1\nretry_mode = adaptive\nmax_attempts = 4\n"
        "[profile plain]\nregion = eu-west-1\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_ENDPOINT_URL", NOWHERE)
    careful = boto3.Session(profile_name="careful", **KEYS)
    assert retries(pf.make_client(boto3_session=careful)) == {
        "mode": "adaptive",
        "total_max_attempts": 4,
    }
    assert retries(make_sts_client(boto3_session=careful))["total_max_attempts"] == 4
    plain = boto3.Session(profile_name="plain", **KEYS)
    assert retries(pf.make_client(boto3_session=plain)) == DEFAULT_RETRIES


def test_botocore_config_is_merged_over_the_defaults_and_wins(
    session: boto3.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")  # code beats the environment, as in botocore
    mine = Config(
        retries={"mode": "adaptive", "total_max_attempts": 5},
        read_timeout=5,
        max_pool_connections=3,
    )
    client = pf.make_client(boto3_session=session, botocore_config=mine, max_pool_connections=9)
    config = client.meta.config
    assert retries(client) == {"mode": "adaptive", "total_max_attempts": 5}
    assert (config.read_timeout, config.max_pool_connections) == (5, 3)
    assert config.connect_timeout == 10


def test_attempts_follow_aws_max_attempts(
    session: boto3.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    ssm = MockSSM([error("InternalServerError", "boom", 500)] * 2)
    client = ssm.attach(pf.make_client(boto3_session=session))
    with pytest.raises(client.exceptions.InternalServerError):
        client.describe_instance_patches(InstanceId=NODE)
    assert len(ssm.requests) == 2


def test_the_emulator_client_keeps_the_callers_config() -> None:
    with pf.Emulator() as emulator:
        client = emulator.client(config=Config(retries={"total_max_attempts": 1}))
        assert retries(client) == {"mode": "standard", "total_max_attempts": 1}
        assert client.meta.config.proxies == {}


def test_fast_patch_pages_only_inside_the_block() -> None:
    row = {"KBId": "KB1", "State": "Installed", "InstalledTime": 1704067200}
    ssm = MockSSM([page([row], "t"), page([row])])
    client = ssm.client()
    with fast_patch_pages(client):
        fast = client.describe_instance_patches(InstanceId=NODE)
    plain = client.describe_instance_patches(InstanceId=NODE)
    assert fast[PAGE_KEY] == {"Patches": [row], "NextToken": "t"}
    assert "Patches" not in fast
    assert plain["Patches"][0]["InstalledTime"].timestamp() == 1704067200
    assert PAGE_KEY not in plain


@pytest.fixture
def aws_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An AWS configuration of one profile, ``known``, and no credentials file."""
    config = tmp_path / "config"
    config.write_text("[profile known]\nregion = eu-west-1\n")
    empty = tmp_path / "credentials"
    empty.write_text("")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))


@pytest.mark.usefixtures("aws_config")
def test_profile_session_of_a_known_profile() -> None:
    session = profile_session("known")
    assert isinstance(session, boto3.Session)
    assert (session.profile_name, session.region_name) == ("known", "eu-west-1")


@pytest.mark.usefixtures("aws_config")
def test_profile_session_of_an_unknown_profile_names_it_and_the_known_ones() -> None:
    with pytest.raises(ValidationError) as raised:
        profile_session("nobody")
    assert str(raised.value) == (
        "profile 'nobody' is not in the AWS configuration; known profiles: known"
    )
