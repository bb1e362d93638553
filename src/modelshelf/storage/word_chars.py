"""Which characters FTS5 keeps inside a word, asked of SQLite itself.

The index splits text into words with FTS5's unicode61 tokenizer, which reads Unicode as
SQLite's own tables have it (version 6.1); a query is split by `search.WORD`, which reads it
as Python's do (a later version). They disagree on a few thousand characters: emoji and
symbols newer than 6.1 (inside a word for FTS5, between words for WORD), letters that were
marks in 6.1, combining marks, private use. `search.name_key` gives no key to a name holding
one, so that a name's key never finds a model its words do not match.
"""

from __future__ import annotations

import functools
import sqlite3
import threading

# As the schema declares model_search (schema step "the search index keeps one-character
# prefixes too"); a test reads it back from a library.
TOKENIZER = "unicode61 remove_diacritics 2"

_probing = threading.Lock()


@functools.cache
def _probe() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
    db.execute(f"CREATE VIRTUAL TABLE probe USING fts5(text, tokenize = '{TOKENIZER}')")
    db.execute("CREATE VIRTUAL TABLE probe_terms USING fts5vocab(probe, 'row')")
    return db


@functools.lru_cache(maxsize=65_536)
def fts5_keeps_in_a_word(char: str) -> bool:
    """Whether FTS5 reads `char` between two letters as part of one word (a diacritic it
    removes included). Asked once per character and process, in an in-memory table."""
    with _probing:
        db = _probe()
        db.execute("DELETE FROM probe")
        db.execute("INSERT INTO probe(text) VALUES (?)", (f"a{char}b",))
        (terms,) = db.execute("SELECT count(*) FROM probe_terms").fetchone()
    return bool(terms == 1)
