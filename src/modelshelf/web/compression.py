"""gzip for the answers worth it: the web UI's files, and JSON answers large enough that their
bytes on the wire cost more than compressing them (a queue of 5,000 pending models is about
2 MB of JSON; see BENCHMARKS.md, "Large answers gzipped")."""

from __future__ import annotations

import zlib

from multidict import MultiMapping
from pydantic import BaseModel

# A JSON answer shorter than this goes as it is: a few kilobytes cross any network in less
# time than a round trip, and most answers (a record, a page of 50 cards) are that small.
GZIP_ABOVE_BYTES = 32 * 1024
# Level 1: answers are built for each request, so speed matters more than the last bytes (on
# 3.4 MB of pending records, level 1 made 531 KB in 19.5 ms, level 6 417 KB in 39.2 ms).
JSON_GZIP_LEVEL = 1


def takes_gzip(headers: MultiMapping[str]) -> bool:
    """Whether a request with these headers takes gzip: its Accept-Encoding names `gzip` (or
    `x-gzip`) with a quality above 0, or else `*` with a quality above 0 (RFC 9110, 12.5.3)."""
    wildcard = False
    for header in headers.getall("Accept-Encoding", []):
        for item in header.split(","):
            coding, _, params = item.partition(";")
            coding = coding.strip().lower()
            if coding in ("gzip", "x-gzip"):
                return _quality(params) > 0
            if coding == "*":
                wildcard = _quality(params) > 0
    return wildcard


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value.strip())
            except ValueError:
                return 0.0
    return 1.0


def encode_json(body: BaseModel | bytes, gzip: bool) -> tuple[bytes, bool]:
    """`body` as JSON bytes (bytes are its JSON already), gzipped when `gzip` and the JSON is
    longer than GZIP_ABOVE_BYTES; and whether it was. Blocking (zlib releases the GIL while it
    compresses): run it off the event loop for a large body."""
    data = body if isinstance(body, bytes) else body.model_dump_json().encode()
    if not gzip or len(data) <= GZIP_ABOVE_BYTES:
        return data, False
    # wbits 31: the gzip format (header and CRC), which every client reads.
    packer = zlib.compressobj(JSON_GZIP_LEVEL, zlib.DEFLATED, 31)
    return packer.compress(data) + packer.flush(), True
