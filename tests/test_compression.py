"""Large JSON answers are gzipped for a client that takes gzip, and go as they are to one that
does not; short answers are never gzipped. The answer is the same JSON either way."""

from __future__ import annotations

import gzip
import json

import pytest
from multidict import CIMultiDict

from modelshelf.domain.tagging import MAX_TAG_NAME
from modelshelf.web.compression import GZIP_ABOVE_BYTES, takes_gzip
from tests.conftest import Client
from tests.editing import call

# Enough tags of the longest name for the list to be well over GZIP_ABOVE_BYTES of JSON.
LONG_NAMES = [f"{n:04d} " + "x" * (MAX_TAG_NAME - 5) for n in range(GZIP_ABOVE_BYTES // 90)]


async def make_tags(client: Client, names: list[str]) -> None:
    for name in names:
        status, body, _ = await call(client, "POST", "/api/tags", {"name": name})
        assert status == 201, body


async def raw_tags(client: Client, accept_encoding: str) -> tuple[bytes, dict[str, str]]:
    response = await client.get(
        "/api/tags", headers={"Accept-Encoding": accept_encoding}, auto_decompress=False
    )
    assert response.status == 200
    return await response.read(), dict(response.headers)


async def test_a_long_answer_is_gzipped_for_a_client_that_takes_gzip(client: Client) -> None:
    await make_tags(client, LONG_NAMES)
    plain, plain_headers = await raw_tags(client, "identity")
    assert len(plain) > GZIP_ABOVE_BYTES
    packed, headers = await raw_tags(client, "gzip, deflate, br")
    assert headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in headers["Vary"]
    assert headers["Content-Type"].startswith("application/json")
    assert len(packed) < len(plain) / 4
    assert gzip.decompress(packed) == plain
    assert [t["name"] for t in json.loads(plain)["tags"]] == LONG_NAMES
    assert "Content-Encoding" not in plain_headers
    assert "Accept-Encoding" in plain_headers["Vary"]


@pytest.mark.parametrize("accept_encoding", ["identity", "gzip;q=0", "deflate, br", "*;q=0"])
async def test_a_long_answer_goes_plain_to_a_client_that_refuses_gzip(
    client: Client, accept_encoding: str
) -> None:
    await make_tags(client, LONG_NAMES)
    body, headers = await raw_tags(client, accept_encoding)
    assert "Content-Encoding" not in headers
    assert [t["name"] for t in json.loads(body)["tags"]] == LONG_NAMES


async def test_a_short_answer_is_never_gzipped(client: Client) -> None:
    await make_tags(client, ["one", "two"])
    body, headers = await raw_tags(client, "gzip")
    assert "Content-Encoding" not in headers
    assert [t["name"] for t in json.loads(body)["tags"]] == ["one", "two"]


@pytest.mark.parametrize(
    ("headers", "takes"),
    [
        ([], False),
        (["gzip"], True),
        (["GZip;Q=0.5"], True),
        (["x-gzip"], True),
        (["deflate", "gzip"], True),
        (["br;q=1.0, gzip;q=0.001"], True),
        (["gzip;q=0"], False),
        (["gzip;q=0.0, *"], False),
        (["gzip;q=nonsense"], False),
        (["identity"], False),
        (["*"], True),
        (["br, *;q=0.1"], True),
        (["*;q=0"], False),
        ([""], False),
    ],
)
def test_takes_gzip_reads_accept_encoding_with_its_qualities(
    headers: list[str], takes: bool
) -> None:
    given: CIMultiDict[str] = CIMultiDict()
    for value in headers:
        given.add("Accept-Encoding", value)
    assert takes_gzip(given) is takes
