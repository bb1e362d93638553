"""The full-text search index over models: the FTS5 table `model_search` and `search_docs`.

Each model has one row in the index, built by `search_document` (the one row builder: add a
new source of searchable text there) from its name, its file names, its description
(`description_of`: the one its page shows), `meta_json.trigger_words` and its tag names.
`search_docs` maps a model to its FTS rowid, holds its base model (`base_model_of`: what the
base-model filter and list read, indexed) and says whether its row must be built again:
triggers on `models`, `model_tags` and `tags` mark it stale (schema step "full-text
search"), so no writer can forget to. `search_rows.refresh_stale` builds the stale rows; the unit of
work runs it in every change just before the commit, and opening the database runs it once
(so a library migrated forward, or changed by another program, is indexed before the service
answers). The index therefore moves in the same transaction as what it describes.

A person's query is never FTS syntax: `match_expression` keeps only its words and quotes each
one as a prefix, so `"`, `*`, `AND`, `(` or `:` cannot cause an error.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from modelshelf.storage.word_chars import fts5_keeps_in_a_word

# Column order of model_search, and how much a match in each weighs (bm25: higher wins).
WEIGHTS: dict[str, float] = {
    "name": 10.0,
    "files": 4.0,
    "description": 1.0,
    "trigger_words": 3.0,
    "tags": 5.0,
}
COLUMNS = tuple(WEIGHTS)
# Letters and digits; everything else separates words, as FTS5's unicode61 tokenizer does.
WORD = re.compile(r"[^\W_]+")
MAX_WORDS = 32
# Longer text is cut: a description pasted whole from a web page needs no more to be found.
MAX_COLUMN_CHARS = 20_000


@dataclass(frozen=True)
class SearchSource:
    """What a model's row is built from."""

    sha256: str
    name: str | None
    meta: dict[str, Any]
    files: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


def search_document(source: SearchSource) -> dict[str, str]:
    """The text of each column of a model's row in `model_search`."""
    return {
        "name": folded(_text(source.name)),
        "files": folded(_text(source.files)),
        "description": folded(_text(description_of(source.meta))),
        # A list of words or phrases, or one string (both are found in real libraries).
        "trigger_words": folded(_text(source.meta.get("trigger_words"))),
        "tags": folded(_text(source.tags)),
    }


# Markup in a description (Civitai's are HTML) is no words of it.
_MARKUP = re.compile(r"<[^>]*>")


# A description a model's own tools wrote is searched by its opening words only. Civitai's
# run to hundreds of words of which few say what the model is; indexed whole they made a
# search met for the first time about twice as slow (BENCHMARKS, Search, thirteenth check).
OTHERS_DESCRIPTION_WORDS = 60


def description_of(meta: dict[str, Any]) -> str | None:
    """The description a model's page shows (web UI, meta.js descriptionOf) as it is searched:
    the person's own (`meta_json.description`), else the first OTHERS_DESCRIPTION_WORDS words
    of the one A1111's sidecar, Civitai's version or model (from the Civitai Helper's
    sidecar, then as LoRA Manager keeps them: `civitai.description`, `modelDescription`), or
    the file's header (`modelspec.description`) gives, its markup taken out."""
    own = meta.get("description")
    if isinstance(own, str) and own.strip():
        return _plain(own)
    manager = meta.get("lora_manager")
    for value in (
        _key(meta.get("a1111"), "description"),
        _key(meta.get("civitai"), "description"),
        _key(_key(meta.get("civitai"), "model"), "description"),
        _key(_key(manager, "civitai"), "description"),
        _key(manager, "modelDescription"),
        _key(meta.get("file_metadata"), "modelspec.description"),
    ):
        if isinstance(value, str) and value.strip():
            return " ".join(_plain(value).split()[:OTHERS_DESCRIPTION_WORDS])
    return None


def _plain(text: str) -> str:
    return html.unescape(_MARKUP.sub(" ", text)) if "<" in text else text


def _key(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, dict) else None


def base_model_of(meta: dict[str, Any]) -> str | None:
    """The base model a model is filtered and counted by: `meta_json.base_model` when it is
    text and not empty (a number or an object is no base model a person could type)."""
    value = meta.get("base_model")
    return value if isinstance(value, str) and value else None


def _text(value: Any) -> str:
    """Every string (and number) in `value`, lists and objects included, space separated."""
    parts: list[str] = []
    stack = [value]
    while stack and sum(len(p) for p in parts) < MAX_COLUMN_CHARS:
        item = stack.pop()
        if isinstance(item, str):
            parts.append(item)
        elif isinstance(item, int | float) and not isinstance(item, bool):
            parts.append(str(item))
        elif isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
    return " ".join(parts)[:MAX_COLUMN_CHARS]


def folded(text: str) -> str:
    """`text` as the index holds it and a query is read: NFKC, then case folded, so that "ß"
    and "ss", "ﬁ" and "fi", full-width and plain letters are one on both sides."""
    return unicodedata.normalize("NFKC", text).casefold()


def typed_words(text: str) -> list[str]:
    """The words of `text` in order, repeats kept, folded: all of them, so that the words a
    query matches (query_words, without repeats, at most MAX_WORDS) are among them."""
    return WORD.findall(folded(text))


def query_words(text: str) -> list[str]:
    """The words of a person's query, in order, without repeats (at most MAX_WORDS)."""
    return distinct_words(typed_words(text))


def distinct_words(typed: Sequence[str]) -> list[str]:
    """query_words of the text whose typed_words are `typed`."""
    return list(dict.fromkeys(typed))[:MAX_WORDS]


# A query that is one word of 10 to 64 hex digits names a model by its hash: AutoV2 (the
# first ten, the "Model hash" of an A1111 picture's parameters) or the whole SHA256 Civitai
# shows. The hash is not in the index: a short hex word ("be", "2") would match one model in
# 256 or 16 by it.
HASH_START = re.compile(r"[0-9a-f]{10,64}")


def hash_start(words: Sequence[str]) -> str | None:
    """The start of a model's SHA256 that `words` (query_words) name, if they are one."""
    return words[0] if len(words) == 1 and HASH_START.fullmatch(words[0]) else None


def hash_or_text_sql(alias: str) -> str:
    """SQL condition on `models alias`: its SHA256 begins with the start (the first two
    parameters, both the start: between it and it + 'g', as every hex digit sorts before 'g',
    so the primary key's index serves), or its row holds that word (the third parameter, its
    match_expression)."""
    return (
        f"({alias}.sha256 BETWEEN ? AND ? || 'g' OR {alias}.sha256 IN (SELECT d.sha256"
        " FROM model_search s JOIN search_docs d ON d.id = s.rowid WHERE model_search MATCH ?))"
    )


def match_expression(words: Sequence[str]) -> str:
    """An FTS5 query matching rows that hold every word as a prefix of one of theirs. Each
    word is a quoted string (a double quote inside is doubled), so nothing in it is syntax."""
    return " AND ".join('"' + w.replace('"', '""') + '"*' for w in words)


def rank_expression() -> str:
    """bm25 with the column weights (lower is better); use it where model_search is matched."""
    return f"bm25(model_search, {', '.join(str(w) for w in WEIGHTS.values())})"


# bm25 weighs a word by how few rows hold it, and floors the weight of one that half of the
# index's rows or more hold (FTS5: an IDF <= 0 becomes 1e-6): such words tell their matches
# apart only by how often short rows hold them, and scoring every match is most of what a
# search costs (about 1 us a match: 8 ms for a two-letter prefix that 9,984 of 10,000 models
# hold). A search that broad lists, after the name tiers, the models whose name holds its
# words, then the others, each in the library's name order (search_docs.name_order, as
# GET /api/models lists them): a walk of that index no deeper than the page.
def breadth_sql() -> str:
    """SQL of one row: `n`, how many rows of the index match, and `broad`, whether that is
    half of them or more; its one parameter is the words' match_expression."""
    return (
        "SELECT n, n * 2 >= (SELECT count(*) FROM search_docs) AS broad"
        " FROM (SELECT count(*) AS n FROM model_search WHERE model_search MATCH ?)"
    )


# Scores of a broad search's two walks: after the name tiers', below any bm25 score.
_NAME_HOLDS, _OTHERS = -6e8, -3e8
_BY_NAME = "(d.name_order IS NULL), d.name_order, d.sha256"


def broad_ranking_sql(
    words: Sequence[str], filtered: str | None, depth: int, gate: str
) -> tuple[str, list[Any]]:
    """SQL selecting `doc_id` and `score` of the first `depth` matches of `words` whose name
    holds them, then of the first `depth` of them all, each in name order and scored so (the
    name tiers' scores are lower still), and its parameters: the ranking of a broad search
    (breadth_sql) to `depth`, a model of the first walk being in the second too.
    `filtered`: SQL of the index rows `doc_id` of the matches a filter keeps, if one does.
    Nothing is read unless `gate` (SQL, constant in the statement) is true: LIMIT is
    evaluated before a walk begins, where a condition would be tested on each row."""
    expression = match_expression(words)
    matching = "d.id IN (SELECT rowid FROM model_search WHERE model_search MATCH ?)"
    kept = f" AND d.id IN ({filtered})" if filtered else ""
    # A name that holds the words is a match: only a filter needs testing beside it.
    walks = ((_NAME_HOLDS, f"{{name}} : ({expression})"), (_OTHERS, expression))
    selects, params = [], []
    for base, matched in walks:
        selects.append(
            f"SELECT doc_id, {base} + row_number() OVER (ORDER BY nulls, name_order, sha256)"
            " AS score FROM (SELECT d.id AS doc_id, d.name_order IS NULL AS nulls,"
            " d.name_order, d.sha256 FROM search_docs d INDEXED BY"
            f" search_docs_name_order_nulls_last WHERE {matching}{kept}"
            f" ORDER BY {_BY_NAME} LIMIT CASE WHEN {gate} THEN {int(depth)} ELSE 0 END)"
        )
        params.append(matched)
    return " UNION ALL ".join(selects), params


def broad_order_sql(words: Sequence[str], tier: str) -> tuple[str, list[Any]]:
    """ORDER BY terms of a query over `model_search` matching `words` joined to
    `search_docs d`, and their parameters (after `tier`'s): a model's name tier score
    (`tier`, SQL: NULL for none), else a broad search's order (breadth_sql,
    broad_ranking_sql), else bm25's; ties by index row. It scores every match: the order the
    one-statement page (storage.listing) must give, spelled plainly."""
    matched = match_expression(words)
    broad = f"(SELECT broad FROM ({breadth_sql()}))"
    named = "model_search.rowid IN (SELECT rowid FROM model_search WHERE model_search MATCH ?)"
    terms = [
        f"coalesce({tier}, CASE WHEN {broad} THEN CASE WHEN {named} THEN {_NAME_HOLDS}"
        f" ELSE {_OTHERS} END ELSE {rank_expression()} END)",
        *(f"CASE WHEN {broad} THEN {term} END" for term in _BY_NAME.split(", ")),
        "model_search.rowid",
    ]
    params = [matched, f"{{name}} : ({matched})", *[matched] * 3]
    return ", ".join(terms), params


# A run of decimal digits in a name, of any script, sorts by its value.
_DIGITS = re.compile(r"\d+")


def name_order(name: str | None) -> str | None:
    """The text a model's name sorts by: folded (case aside), each run of digits written as
    its value's length (the length's own number of digits, then the length) and then the
    value, so that "v2" sorts before "v10" and "Model 9" before "model 10", as a file manager
    lists them. None for no name, or one that is no text (a BLOB another program wrote)."""
    return _DIGITS.sub(_by_value, folded(name)) if isinstance(name, str) else None


def _by_value(digits: re.Match[str]) -> str:
    value = "".join(str(unicodedata.decimal(d)) for d in digits.group()).lstrip("0") or "0"
    length = str(len(value))
    return f"{len(length)}{length}{value}"


def name_key(name: str | None) -> str | None:
    """A model's name as the words a person types for it (its index text's WORDs, joined by a
    space), which name_tiers_sql compares; None for a name without a word, or holding a
    character that FTS5's unicode61 reads as part of a word and WORD does not (a combining
    mark NFKC left, an emoji newer than SQLite's tables): every model the key finds must be a
    match."""
    text = folded(_text(name)) if name else ""
    words = WORD.findall(text)
    if not words or any(map(_read_apart, set(text))):
        return None
    return " ".join(words)


def name_rank(key: str) -> str:
    """The order of names inside a tier of name_tiers_sql: a name_key with each run of digits
    written by its value, as name_order writes it ("pony v2" before "pony v10"). The rank of a
    key that begins with typed words not ending in a digit begins with the rank of those
    words (their numbers are whole), so those tiers are ranges of this rank."""
    return _DIGITS.sub(_by_value, key)


def _read_apart(char: str) -> bool:
    """Whether WORD and FTS5 disagree on `char`: one reads it inside a word, the other between
    words (storage.word_chars). In ASCII they agree: letters and digits make words."""
    return not char.isascii() and bool(WORD.fullmatch(char)) != fts5_keeps_in_a_word(char)


# Below any bm25 score: those are above -1e4 (32 words x weight 10 x an IDF under 25 x 2.2).
_BEFORE_ANY_SCORE = -1e9
# The name is the words; it begins with them as whole words (a space follows); it begins
# with them, the last one begun (a word character follows: above the space, as every
# character of a key is): a condition on a column `{c}`, and its bounds. A tier but the
# first is read as a range of name_rank's index, in its order (numbers by value), no deeper
# than a page; name_key's own range is tested beside it (two numbers that differ only in
# leading zeros share a rank, not a key). name_rank is no range of a last word begun that
# ends in a digit ("v1" begins "v10", whose number is written with another length): that
# tier is name_key's range, read whole and sorted (few names begin with a number typed).
# Not GLOB: a statement whose GLOB pattern is a parameter is prepared again at each run,
# which cost a whole page's statement 1-2 ms.
_TIERS = (
    ("{c} = ?", ("{}",)),
    ("{c} >= ? AND {c} < ?", ("{} ", "{}!")),
    ("{c} >= ? AND {c} < ?", ("{}!", "{}\U0010ffff")),
)


def name_tiers_sql(
    typed: Sequence[str], depth: int | None, kept_by: tuple[list[str], list[Any]] = ([], [])
) -> tuple[str, list[Any]]:
    """SQL selecting `doc_id` and `score` of the models whose name begins with `typed`
    (typed_words of a query, the last one begun), scored below any bm25 score, in the order
    of _TIERS, then by name_rank, then index row: a search ranks these first, as a person
    typing a name expects, then its other matches by bm25. Each is a match of the query's
    words (see name_key). `kept_by`: the conditions on `models m` of a filter beside the
    words, and their parameters. At most `depth` of each tier, enough for a ranking that
    deep."""
    key = " ".join(typed)
    rank = name_rank(key)
    limit = "" if depth is None else f" LIMIT {int(depth)}"
    conditions, condition_params = kept_by
    # Each tier row's model read by its key (CROSS JOIN keeps the range first), no pass over
    # the matches: a filter costs a look-up a row.
    models = " CROSS JOIN models m ON m.sha256 = search_docs.sha256" if conditions else ""
    kept = "".join(f" AND {c}" for c in conditions)
    selects, params = [], []
    for n, (test, bounds) in enumerate(_TIERS):
        keyed = [b.format(key) for b in bounds]
        if n == 0 or (n == 2 and _DIGITS.match(key[-1:])):
            where, tier_params = test.format(c="name_key"), keyed
        else:
            where = f"{test.format(c='name_rank')} AND {test.format(c='+name_key')}"
            tier_params = [*(b.format(rank) for b in bounds), *keyed]
        selects.append(
            f"SELECT * FROM (SELECT id, {3 - n} AS tier, name_rank FROM search_docs{models}"
            f" WHERE {where}{kept} ORDER BY name_rank, id{limit})"
        )
        params += [*tier_params, *condition_params]
    sql = (
        f"SELECT id AS doc_id, {_BEFORE_ANY_SCORE} + row_number()"
        f" OVER (ORDER BY tier DESC, name_rank, id) AS score FROM ({' UNION ALL '.join(selects)})"
    )
    return sql, params


def ranked_hits_sql(scored: str) -> str:
    """SQL of the hashes of one page of `scored` (a table or subquery of index rows `doc_id`
    and their `score`), best first, ties by index row; LIMIT and OFFSET are its last two
    parameters."""
    return (
        f"SELECT d.sha256 FROM (SELECT doc_id, score FROM {scored}"
        " ORDER BY score, doc_id LIMIT ? OFFSET ?) hits"
        " JOIN search_docs d ON d.id = hits.doc_id ORDER BY hits.score, hits.doc_id"
    )


def count_sql(words: Sequence[str]) -> tuple[str, list[Any]]:
    """How many models hold every word (the index alone answers)."""
    return "SELECT count(*) FROM model_search WHERE model_search MATCH ?", [match_expression(words)]


# Joined to models: the index is read first (CROSS JOIN fixes the order; the planner would
# otherwise run the full-text query once per model of a filter such as `type`).
JOINED = (
    "model_search CROSS JOIN search_docs d ON d.id = model_search.rowid"
    " CROSS JOIN models m ON m.sha256 = d.sha256"
)
MATCH = "model_search MATCH ?"
