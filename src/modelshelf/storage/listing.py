"""Queries for browsing the library: filtered, searched, sorted and paged model listings."""

from __future__ import annotations

import sqlite3
from array import array
from typing import Any, NamedTuple

import aiosqlite
from pydantic_core import from_json, to_json

from modelshelf.records import ModelRecord
from modelshelf.storage import models, search
from modelshelf.storage.counts import RANKING_DEPTH, Kept, MatchCounts
from modelshelf.storage.model_filter import ModelFilter
from modelshelf.storage.record_texts import (
    MEMO,
    cut_jsons,
    record_jsons,
    records_of,
    records_text_sql,
)
from modelshelf.storage.rows import (
    UNKNOWN_CHARS,
    query_all,
    query_json,
    query_tuples,
    run_on_connection,
)


class Page(NamedTuple):
    """A page of records as JSON (record_texts.RecordMemo.jsons'), how many models match in
    all, and the length of the text the records were read from (UNKNOWN_CHARS when read row
    by row): about that of their answer, which when long is gzipped off the event loop."""

    total: int
    jsons: list[bytes]
    chars: int

    @property
    def records(self) -> list[ModelRecord]:
        """The page's records, validated from their JSON."""
        return records_of(self.jsons)


async def read_page(
    conn: aiosqlite.Connection, where: ModelFilter, limit: int, offset: int, counts: MatchCounts
) -> tuple[int, list[ModelRecord]]:
    """One page of full records in the filter's order and how many models match in all, read
    in one snapshot and one trip to the connection's thread; the count, and a search's order,
    are taken from `counts` while its generation has not moved since they were kept."""
    page = await read_sized_page(conn, where, limit, offset, counts)
    return page.total, records_of(page.jsons)


async def read_sized_page(
    conn: aiosqlite.Connection,
    where: ModelFilter,
    limit: int,
    offset: int,
    counts: MatchCounts,
    meta_keys: frozenset[str] | None = None,
) -> Page:
    """read_page, with the length of the page's JSON; each record's meta_json cut to
    `meta_keys` unless None (on the connection's thread, off the event loop)."""
    return await run_on_connection(conn, _read_cut_page, where, limit, offset, counts, meta_keys)


def _read_cut_page(
    db: sqlite3.Connection,
    where: ModelFilter,
    limit: int,
    offset: int,
    counts: MatchCounts,
    meta_keys: frozenset[str] | None,
) -> Page:
    page = _read_page(db, where, limit, offset, counts)
    return page if meta_keys is None else page._replace(jsons=cut_jsons(page.jsons, meta_keys))


def _read_page(
    db: sqlite3.Connection, where: ModelFilter, limit: int, offset: int, counts: MatchCounts
) -> Page:
    if db.in_transaction:
        raise RuntimeError("a page is read in a read transaction of its own")
    key = where.count_key()
    generation = counts.generation()
    kept = counts.get(key, generation)
    if kept is not None:
        read = _read_with_kept(db, where, limit, offset, kept)
        if read is None:
            return _read_page_in_transaction(db, where, limit, offset)
        # What was kept at `generation` is true of this snapshot if no write began since.
        if counts.settled(generation):
            if read.ranking is not None:  # ranked deeper than was kept
                counts.put(key, generation, Kept(kept.total, read.ranking))
            return Page(kept.total, read.jsons, read.chars)
        generation = counts.generation()
    read = read_page_at_once(db, where, limit, offset, count=True)
    if read is None:
        return _read_page_in_transaction(db, where, limit, offset)
    if counts.settled(generation):  # counted and ranked in a snapshot taken at `generation`
        counts.put(key, generation, Kept(read.total, read.ranking))
    return Page(read.total, read.jsons, read.chars)


def _read_with_kept(
    db: sqlite3.Connection, where: ModelFilter, limit: int, offset: int, kept: Kept
) -> PageRead | None:
    """The page's records (its total not counted), its order taken from the kept ranking
    when that holds the page, else ranked again (deeper than was kept) or sorted again.
    None for a BLOB."""
    doc_ids = kept.ranked_page(limit, offset) if where.ranked() else None
    if doc_ids is None:
        return read_page_at_once(db, where, limit, offset, count=False, kept_depth=kept.depth)
    return _read_ranked(db, doc_ids)


class PageRead(NamedTuple):
    """A page read by one statement: how many models match (-1 if not counted), the page's
    records as JSON (record_texts.RecordMemo.jsons') and, for a search ranked best first
    whose page lies within RANKING_DEPTH, the index rows of its best matches in order, to the
    page's end at least (else None); and the length of the text its records were read from."""

    total: int
    jsons: list[bytes]
    ranking: array[int] | None = None
    chars: int = UNKNOWN_CHARS

    @property
    def records(self) -> list[ModelRecord]:
        """The page's records, validated from their JSON."""
        return records_of(self.jsons)


def read_page_at_once(
    db: sqlite3.Connection,
    where: ModelFilter,
    limit: int,
    offset: int,
    *,
    count: bool,
    kept_depth: int = 0,
) -> PageRead | None:
    """One page's records (and, if `count`, how many models match) read by a single
    statement answering one row: one snapshot without a transaction, and one hand-back of
    the GIL where a transaction, the page's hashes and its records took four (see
    rows.query_json). A search ranked best first ranks its best matches as deep as
    ranking_depth says, `kept_depth` of them being kept already. None if a column holds what
    JSON cannot (a BLOB)."""
    ctes, total_sql, ranking_sql, params = _page_ctes(where, limit, offset, count, kept_depth)
    sql = (
        f"WITH {ctes} SELECT ({total_sql}), (SELECT json_group_array(sha256) FROM page),"
        f" ({records_text_sql('SELECT sha256 FROM page')}), ({ranking_sql})"
    )
    try:
        total, hashes, found, ranking = query_tuples(db, sql, params)[0]
    except sqlite3.OperationalError:  # a BLOB, which JSON cannot hold (another program's)
        return None
    jsons = MEMO.jsons(from_json(hashes), found)
    ranked = None if ranking is None else array("q", from_json(ranking))
    return PageRead(int(total), jsons, ranked, len(found or ""))


def ranking_depth(limit: int, offset: int, kept_depth: int) -> int:
    """How many best matches to rank for a page, `kept_depth` being kept already: to the page's
    end the first time (SQLite sorts a deeper ranking slower: LIMIT 2,000 instead of 50 cost
    1.7 ms more over 2,700 matches, so a first page costs what it did), and to RANKING_DEPTH
    for a page past what is kept (a person scrolling on: the pages after are then kept). Past
    RANKING_DEPTH, to the page's end, and nothing is kept."""
    end = offset + limit
    return end if end > RANKING_DEPTH or not kept_depth else RANKING_DEPTH


def read_ranked_page(db: sqlite3.Connection, doc_ids: list[int]) -> list[ModelRecord] | None:
    """The records of the models of index rows `doc_ids`, in that order, read by one
    statement. None if a column holds what JSON cannot (a BLOB)."""
    read = _read_ranked(db, doc_ids)
    return None if read is None else read.records


def _read_ranked(db: sqlite3.Connection, doc_ids: list[int]) -> PageRead | None:
    sql = (
        "WITH page AS MATERIALIZED (SELECT d.sha256 FROM json_each(?) j"
        " JOIN search_docs d ON d.id = j.value ORDER BY j.key)"
        " SELECT (SELECT json_group_array(sha256) FROM page),"
        f" ({records_text_sql('SELECT sha256 FROM page')})"
    )
    try:
        hashes, found = query_tuples(db, sql, [to_json(doc_ids).decode()])[0]
    except sqlite3.OperationalError:  # a BLOB, which JSON cannot hold (another program's)
        return None
    jsons = MEMO.jsons(from_json(hashes), found)
    return PageRead(-1, jsons, None, len(found or ""))


def _page_ctes(
    where: ModelFilter, limit: int, offset: int, count: bool, kept_depth: int
) -> tuple[str, str, str, list[Any]]:
    """The common table expressions that define `page` (the page's hashes in order), the
    SQL of the total (-1 unless `count`), the SQL of the kept ranking (a JSON array, or
    NULL), and their parameters. MATERIALIZED: what is ranked is ranked once, though several
    parts of the statement read it."""
    if where.ranked():
        depth = ranking_depth(limit, offset, kept_depth)
        return _ranked_ctes(where, limit, offset, count, depth)
    page_sql, params = _page_sql(where, limit, offset)
    total_sql, total_params = _count_sql(where) if count else ("SELECT -1", [])
    return f"page AS MATERIALIZED ({page_sql})", total_sql, "NULL", [*params, *total_params]


def _ranked_ctes(
    where: ModelFilter, limit: int, offset: int, count: bool, depth: int
) -> tuple[str, str, str, list[Any]]:
    """_page_ctes of a search ranked best first: its best `depth` matches are ranked, with the
    names that begin with what was typed before them (search.name_tiers_sql), then in one
    pass scoring every match by bm25 (SQLite keeps only the best while it sorts) or, for a
    broad search (search.breadth_sql), by two walks of the name index no deeper than
    `depth`; the page is taken from them, and their order is answered, to be kept
    (storage.counts), unless the page lies past RANKING_DEPTH."""
    broad = "(SELECT broad FROM breadth)"
    bm25 = search.rank_expression()
    ctes = f"breadth AS MATERIALIZED ({search.breadth_sql()}), "
    params: list[Any] = [search.match_expression(where.words)]
    filtered = None
    if where.ranked_after_filters():
        # Words and other filters: every match is joined to `models` anyway, so the matches
        # are scored once (unless the search is broad), then counted and ranked (rather than
        # joined twice).
        scored = f"CASE WHEN {broad} THEN 0 ELSE {bm25} END AS score, model_search.rowid AS doc_id"
        matches, match_params = where.select(scored)
        ctes += f"matches AS MATERIALIZED ({matches}), "
        params += match_params
        source, total_sql = "matches", "SELECT count(*) FROM matches"
        filtered = "SELECT doc_id FROM matches"
        tiers, tier_params = search.name_tiers_sql(where.typed, depth, where.filters())
    else:
        source = f"(SELECT {bm25} AS score, rowid AS doc_id FROM model_search WHERE {search.MATCH})"
        params.append(search.match_expression(where.words))
        total_sql = "SELECT n FROM breadth"
        tiers, tier_params = search.name_tiers_sql(where.typed, depth)
    walks, walk_params = search.broad_ranking_sql(where.words, filtered, depth, broad)
    if not count:
        total_sql = "SELECT -1"
    # The best by bm25 and the name tiers, each model once, at its better (its tier's) score.
    best = (
        f"SELECT doc_id, min(score) AS score FROM (SELECT * FROM (SELECT doc_id, score FROM"
        f" {source} ORDER BY score, doc_id LIMIT CASE WHEN {broad} THEN 0 ELSE ? END)"
        f" UNION ALL SELECT * FROM ({tiers})"
        f" UNION ALL {walks}) GROUP BY doc_id ORDER BY score, doc_id LIMIT ?"
    )
    params += [depth, *tier_params, *walk_params, depth]
    ctes += (
        f"ranked AS MATERIALIZED ({best}),"
        f" page AS MATERIALIZED ({search.ranked_hits_sql('ranked')})"
    )
    ranking_sql = (
        "SELECT json_group_array(doc_id) FROM (SELECT doc_id FROM ranked ORDER BY score, doc_id)"
        if offset + limit <= RANKING_DEPTH
        else "NULL"
    )
    return ctes, total_sql, ranking_sql, [*params, limit, offset]


def _read_page_in_transaction(
    db: sqlite3.Connection, where: ModelFilter, limit: int, offset: int
) -> Page:
    """The page and its total query by query, for a column JSON cannot hold (a BLOB)."""
    # One read transaction: the total and the page agree even while changes commit.
    db.execute("BEGIN")
    try:
        hashes = page_of_hashes(db, where, limit, offset)  # the snapshot begins here
        records = models.read_models(db, hashes)
        return Page(count_models(db, where), record_jsons(records), UNKNOWN_CHARS)
    finally:
        db.execute("COMMIT")


def count_models(db: sqlite3.Connection, where: ModelFilter) -> int:
    sql, params = _count_sql(where)
    return int(query_all(db, sql, params)[0][0])


def _count_sql(where: ModelFilter) -> tuple[str, list[Any]]:
    if where.ranked_by_index_alone():
        return search.count_sql(where.words)
    return where.select("count(*)")


def page_of_hashes(
    db: sqlite3.Connection, where: ModelFilter, limit: int, offset: int
) -> list[str]:
    """Hashes of one page in the filter's order (ties broken by name as the name sort reads
    it, then hash; among equal search scores, by index row)."""
    sql, params = _page_sql(where, limit, offset)
    # One row (see rows.query_json): SQLite's array holds the hashes in the order the page's
    # rows come.
    hashes: list[str] = query_json(
        db, f"SELECT json_group_array(page.sha256) FROM ({sql}) page", params
    )
    return hashes


def _page_sql(where: ModelFilter, limit: int, offset: int) -> tuple[str, list[Any]]:
    """SQL selecting the hashes (column `sha256`) of one page, in order."""
    if where.ranked():
        ctes, _, _, params = _ranked_ctes(where, limit, offset, False, limit + offset)
        return f"WITH {ctes} SELECT sha256 FROM page", params
    sql, params = where.select("m.sha256", ordered=True)
    order, order_params = where.order_by()
    return f"{sql} ORDER BY {order} LIMIT ? OFFSET ?", [*params, *order_params, limit, offset]


async def base_model_counts(conn: aiosqlite.Connection) -> list[tuple[str, int]]:
    """The base models in use, each with how many models have it, most used first, then by
    name ignoring case. A base model is what the `base_model` filter matches
    (search.base_model_of), and spellings that differ only in case are one, named as most of
    its models spell it (of spellings as common, the first by code point); its count is the
    total the filter lists."""
    sql = (
        "WITH spellings AS (SELECT base_model AS name, count(*) AS n FROM search_docs"
        "  WHERE base_model IS NOT NULL GROUP BY base_model COLLATE NOCASE, base_model),"
        " named AS (SELECT name, sum(n) OVER same AS total,"
        "  row_number() OVER (same ORDER BY n DESC, name) AS rank FROM spellings"
        "  WINDOW same AS (PARTITION BY name COLLATE NOCASE))"
        " SELECT name, total FROM named WHERE rank = 1"
        " ORDER BY total DESC, name COLLATE NOCASE, name"
    )
    rows = await run_on_connection(conn, query_tuples, sql)
    return [(str(name), int(total)) for name, total in rows]
