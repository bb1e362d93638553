"""Reading a server-sent event stream as a browser's EventSource does."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass(frozen=True)
class Event:
    name: str
    data: Any  # the data lines, parsed as JSON
    received: float  # time.monotonic() when it arrived


async def read_events(response: aiohttp.ClientResponse) -> AsyncIterator[Event]:
    """Every event of the stream until the server closes it (comments, such as pings, are
    skipped)."""
    name, data = "message", []
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if not line:
            if data:
                yield Event(name, json.loads("\n".join(data)), time.monotonic())
            name, data = "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)


async def events_until_end(response: aiohttp.ClientResponse) -> list[Event]:
    """Every event up to and including `end`."""
    events = []
    async for event in read_events(response):
        events.append(event)
        if event.name == "end":
            break
    return events
