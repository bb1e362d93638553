"""DNS rebinding: a page under a name its owner points at 127.0.0.1 is same-origin to the
browser, so only the Host header tells its requests apart. A service bound to loopback answers
to addresses and localhost only (and to `allowed_hosts`); bound elsewhere or behind a named
proxy it answers to any name unless `allowed_hosts` says which."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelshelf.config import SettingsError, load_settings
from modelshelf.web.hosts import name_of_host
from tests.conftest import MakeClient

REBOUND = "rebind.attacker.example.:8080"
OWN_NAMES = ["127.0.0.1:8080", "127.0.0.1", "[::1]:8080", "192.168.1.20:8080", "localhost:8080"]
OWN_NAMES += ["LOCALHOST", "shelf.localhost:8080", "localhost.:8080", "my-pc:8080", "x"]


@pytest.mark.parametrize("host", OWN_NAMES)
async def test_a_loopback_service_answers_to_addresses_and_localhost(
    make_client: MakeClient, host: str
) -> None:
    client = await make_client()
    assert (await client.get("/api/models", headers={"Host": host})).status == 200


@pytest.mark.parametrize(("method", "path"), [("GET", "/api/models"), ("POST", "/api/tags")])
async def test_a_loopback_service_refuses_another_name_before_anything_else(
    make_client: MakeClient, method: str, path: str
) -> None:
    client = await make_client()
    response = await client.request(
        method, path, headers={"Host": REBOUND}, json={"name": "from-a-rebound-page"}
    )
    assert response.status == 403
    body = await response.json()
    assert "rebind.attacker.example" in body["detail"] and "allowed_hosts" in body["detail"]
    assert (await (await client.get("/api/tags")).json())["tags"] == []


async def test_allowed_hosts_adds_names_and_is_honoured_wherever_it_listens(
    make_client: MakeClient,
) -> None:
    client = await make_client(host="0.0.0.0", allowed_hosts=["nas.local"])
    for host in ("nas.local:8080", "NAS.LOCAL.", "127.0.0.1:8080", "localhost"):
        assert (await client.get("/api/health", headers={"Host": host})).status == 200, host
    assert (await client.get("/api/health", headers={"Host": REBOUND})).status == 403


@pytest.mark.parametrize(
    "overrides",
    [
        {"host": "0.0.0.0"},
        {"host": "::"},
        {"trusted_proxies": ["127.0.0.1"]},
        {"allowed_hosts": ["*"]},
    ],
    ids=["all interfaces", "all interfaces v6", "behind a proxy", "any name"],
)
async def test_without_allowed_hosts_any_name_is_answered_off_loopback_or_behind_a_proxy(
    make_client: MakeClient, overrides: dict[str, object]
) -> None:
    client = await make_client(**overrides)
    assert (await client.get("/api/health", headers={"Host": "shelf.example.org"})).status == 200


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:8080", "127.0.0.1"),
        ("[::1]:8080", "::1"),
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("NAS.local.:80", "nas.local"),
        ("shelf.example.org", "shelf.example.org"),
    ],
)
def test_the_name_of_a_host_header_drops_port_case_and_final_dot(header: str, name: str) -> None:
    assert name_of_host(header) == name


@pytest.mark.parametrize("bad", ["http://nas.local", "nas.local:8080", "a b", "user@nas"])
def test_allowed_hosts_takes_names_only(tmp_path: Path, bad: str) -> None:
    with pytest.raises(SettingsError, match="allowed_hosts"):
        load_settings(environ={"MODELSHELF_ALLOWED_HOSTS": f"ok.local,{bad}"}, config_dir=tmp_path)


def test_allowed_hosts_from_the_environment(tmp_path: Path) -> None:
    settings = load_settings(
        environ={"MODELSHELF_ALLOWED_HOSTS": "NAS.local, shelf.example.org"}, config_dir=tmp_path
    )
    assert settings.allowed_hosts == ["nas.local", "shelf.example.org"]
