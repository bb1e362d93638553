"""Pages of model records read as text, one row of record_row_sql's layout per model, and
the JSON of the records built from them kept by that text: a record read again as it was (a
page scrolled back to, a search asked again, another client listing the same models) is not
parsed, validated and serialised again. A row's text is all its record is made of, so nothing
need tell the memo that a model changed: a changed model reads as another text."""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence

from pydantic import TypeAdapter
from pydantic_core import from_json, to_json

from modelshelf.records import ModelRecord
from modelshelf.storage.models import RECORDS, record_row_sql, records_from_rows
from modelshelf.storage.rows import parse_json

RECORD = TypeAdapter(ModelRecord)
# JSON escapes every control character inside a string, so none can be in a row's text.
ROW_SEPARATOR = "\x1e"
# What the memo holds at most, counted in the bytes Python keeps the rows' texts and their
# records' JSON in (a character of a text takes 1 to 4 of them: counted in characters,
# records of Japanese text took twice the bound, of emoji two and a half times). The search
# bench's 10,000 records took 17.8 MiB: they are all kept, as they were when counted so.
KEPT_SIZE = 20 * 1024 * 1024
# A row longer than this (a scan's kohya header with megabytes of tag counts) is not kept.
LONGEST_KEPT = 256 * 1024


def records_text_sql(hashes: str) -> str:
    """SQL answering one row: the text of each model whose hash is IN (`hashes`) (placeholders
    or a subquery) laid out as record_row_sql's, joined by ROW_SEPARATOR in no set
    order; NULL when there is none. A BLOB in a column makes it raise
    sqlite3.OperationalError."""
    return (
        f"SELECT group_concat({record_row_sql()}, char(30)) FROM models m"
        f" WHERE m.sha256 IN ({hashes})"
    )


class RecordMemo:
    """The JSON of records built from rows' texts, the least recently read forgotten first
    beyond `capacity` bytes of texts and JSON. Kept as bytes, not as records:
    10,000 records' objects made each full collection of the garbage collector 70 ms longer.
    Safe to share between the reading connections' threads."""

    def __init__(self, capacity: int = KEPT_SIZE) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        # Each row's text: its record's JSON, and the bytes both take (as counted when kept).
        self._kept: OrderedDict[str, tuple[bytes, int]] = OrderedDict()
        self._size = 0

    @property
    def size(self) -> int:
        """The bytes the texts and the JSON it keeps take."""
        return self._size

    def __len__(self) -> int:
        """How many records it keeps."""
        return len(self._kept)

    def jsons(self, hashes: Sequence[str], text: str | None) -> list[bytes]:
        """The JSON of the records of `hashes` (in that order, unknown ones skipped) from the
        text of records_text_sql's row, each as ModelRecord serialises it; rows not kept are
        parsed and validated together, then kept."""
        # Each row begins ["<sha256>", as json_array writes it.
        rows = {r[2 : r.index('"', 2)]: r for r in text.split(ROW_SEPARATOR)} if text else {}
        found: dict[str, bytes] = {}
        with self._lock:
            for h, row in rows.items():
                kept = self._kept.get(row)
                if kept is not None:
                    self._kept.move_to_end(row)
                    found[h] = kept[0]
        missing = [h for h in rows if h not in found]
        if missing:
            # Parsed from UTF-8 bytes: parsed as a str, a text not ASCII would keep its UTF-8
            # beside it, in the memo, as long as it is kept.
            parsed = [from_json(rows[h].encode()) for h in missing]
            built = records_from_rows(missing, parsed)
            found.update((r.sha256, RECORD.dump_json(r)) for r in built)
            self._keep({rows[h]: found[h] for h in missing})
        return [found[h] for h in hashes if h in found]

    def _keep(self, built: dict[str, bytes]) -> None:
        with self._lock:
            for row, data in built.items():
                if len(row) <= LONGEST_KEPT and row not in self._kept:
                    cost = sys.getsizeof(row) + sys.getsizeof(data)
                    self._kept[row] = (data, cost)
                    self._size += cost
            while self._size > self._capacity:
                _, (_, cost) = self._kept.popitem(last=False)
                self._size -= cost


def record_jsons(records: Iterable[ModelRecord]) -> list[bytes]:
    """The JSON of each record, as RecordMemo.jsons answers it."""
    return [RECORD.dump_json(r) for r in records]


def records_of(jsons: Sequence[bytes]) -> list[ModelRecord]:
    """The records whose JSON RecordMemo.jsons answered, validated again (as one list)."""
    return RECORDS.validate_python(parse_json(b"[" + b",".join(jsons) + b"]"))


def cut_jsons(jsons: Sequence[bytes], keys: frozenset[str]) -> list[bytes]:
    """The JSON of each record, each as RecordMemo.jsons answers it, with its meta_json cut to
    `keys`: what ModelRecord serialises of the record so cut, without validating it again
    (on a page of 50, five times what the cut takes)."""
    return [_cut_json(data, keys) for data in jsons]


def _cut_json(data: bytes, keys: frozenset[str]) -> bytes:
    record = parse_json(data)
    record["meta_json"] = {k: v for k, v in record["meta_json"].items() if k in keys}
    return to_json(record)


# One memo for the process: what it keeps depends on nothing but the texts it was given.
MEMO = RecordMemo()
