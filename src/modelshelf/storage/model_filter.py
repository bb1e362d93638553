"""Which models a listing shows and in which order: ModelFilter, the SQL of its filters and
of its order (storage.listing reads the pages)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from modelshelf.storage import search

SortKey = Literal["name", "created_at", "size_bytes"]
Order = Literal["asc", "desc"]


def missing_sql(alias: str = "m") -> str:
    """SQL truth value: the model `alias` has no location with its file present (the same rule
    as ModelRecord.missing)."""
    return (
        "NOT EXISTS (SELECT 1 FROM model_files f"
        f" WHERE f.sha256 = {alias}.sha256 AND f.present = 1)"
    )


@dataclass(frozen=True)
class ModelFilter:
    """Which models a listing shows and in which order. `q` is a person's full-text query:
    each of its words matches as a prefix (see storage.search), and with words and no `sort`
    the best matches come first. A `q` without any word (only punctuation) filters nothing."""

    type: str | None = None
    tag: str | None = None
    q: str | None = None
    base_model: str | None = None
    missing: bool | None = None
    sort: SortKey | None = None
    order: Order = "asc"

    @cached_property
    def _query(self) -> tuple[list[str], str | None, list[str]]:
        # `q` read once (folded, words, a hash or not): a listing asks for each many times.
        typed = search.typed_words(self.q) if self.q else []
        words = search.distinct_words(typed)
        start = search.hash_start(words)
        return ([] if start else words), start, ([] if start else typed)

    @property
    def words(self) -> list[str]:
        """The words the full-text index ranks: none when `q` names a hash (hash_start)."""
        return self._query[0]

    @property
    def typed(self) -> list[str]:
        """The words as typed, repeats kept, which a name begins with (search.name_tiers_sql)."""
        return self._query[2]

    def hash_start(self) -> str | None:
        """The start of a SHA256 that `q` is (search.hash_start): the listing holds the
        models whose hash begins with it, and those whose row holds it as a word, by name."""
        return self._query[1]

    def filters(self) -> tuple[list[str], list[Any]]:
        """Conditions on `models m` other than the full text, and their parameters."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.type is not None:
            clauses.append("m.type = ?")
            params.append(self.type)
        if self.tag is not None:
            # Case aside, as tag names are folded when saved (a legacy one kept its capitals).
            clauses.append(
                "EXISTS (SELECT 1 FROM model_tags mt JOIN tags t ON t.id = mt.tag_id"
                " WHERE mt.model_hash = m.sha256 AND t.name = ? COLLATE NOCASE)"
            )
            params.append(self.tag)
        if self.base_model is not None:
            # The base models kept beside the index (search.base_model_of), by their index.
            clauses.append(
                "m.sha256 IN (SELECT sha256 FROM search_docs WHERE base_model = ? COLLATE NOCASE)"
            )
            params.append(self.base_model)
        if self.missing is not None:
            clauses.append(f"({missing_sql('m')}) = ?")
            params.append(1 if self.missing else 0)
        if (start := self.hash_start()) is not None:
            clauses.append(search.hash_or_text_sql("m"))
            params += [start, start, search.match_expression([start])]
        return clauses, params

    def select(self, columns: str, ordered: bool = False) -> tuple[str, list[Any]]:
        """`SELECT columns FROM ... [WHERE ...]` over `models m`, without ORDER BY; `ordered`:
        with the rows beside the index (`search_docs d`) that order_by reads."""
        clauses, params = self.filters()
        source = "models m JOIN search_docs d ON d.sha256 = m.sha256" if ordered else "models m"
        if words := self.words:
            source = search.JOINED
            clauses.insert(0, search.MATCH)
            params.insert(0, search.match_expression(words))
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        return f"SELECT {columns} FROM {source}{where}", params

    def order_by(self) -> tuple[str, list[Any]]:
        """The terms of ORDER BY over `select`'s rows, and their parameters (after its)."""
        if self.ranked():
            # The rows are filtered already: the tiers' order among them is all it reads.
            tiers, params = search.name_tiers_sql(self.typed, None)
            tier = f"(SELECT t.score FROM ({tiers}) t WHERE t.doc_id = model_search.rowid)"
            order, order_params = search.broad_order_sql(self.words, tier)
            return order, [*params, *order_params]
        # Names as people read their numbers (search.name_order), kept beside the index; the
        # ties of a sort by date or size read as the name sort does. Models without a name,
        # date or size come last: NULL sorts first ascending, and last descending (the index
        # search_docs_name_order_nulls_last, models_created_nulls_last or
        # models_size_nulls_last reads the ascending order as it is; descending reads the
        # plain index backwards). A sort by date or size reads its index in order and sorts
        # only the ties: a first page reads about a page of rows beside the index, where a
        # sort of every model by date read 10,000 (BENCHMARKS.md, "Twentieth check").
        if self.order == "desc":
            by_name = "d.name_order DESC, d.sha256 DESC"
            return (by_name if self.sorted_by_name() else f"m.{self.sort} DESC, {by_name}"), []
        by_name = "(d.name_order IS NULL), d.name_order ASC, d.sha256 ASC"
        if self.sorted_by_name():
            return by_name, []
        return f"(m.{self.sort} IS NULL), m.{self.sort} ASC, {by_name}", []

    def sorted_by_name(self) -> bool:
        """Listed by name (the default without words)."""
        return not self.ranked() and self.sort in (None, "name")

    def count_key(self) -> tuple[Any, ...]:
        """What decides how many models match and, for a search, its order (the words as
        typed, repeats kept: search.name_tiers_sql), not how `q` was spelled."""
        return (
            self.type,
            self.tag,
            tuple(self.words),
            tuple(self.typed),
            self.base_model,
            self.missing,
            self.hash_start(),
        )

    def tracked_by_index(self) -> bool:
        """Whether every change that can change how many models match, or their order, also
        changes the full-text index, so that what is kept of this listing may follow the
        index's generation (Storage.index_generation). The search triggers mark a model's row
        for any change to its `models` row (type, meta_json, the sort columns), its tags, a
        tag's name, or its locations' paths; not for a location's `present`, which `missing`
        reads."""
        return self.missing is None

    def ranked(self) -> bool:
        """Words and no `sort`: the best matches come first."""
        return bool(self.words) and self.sort is None

    def ranked_by_index_alone(self) -> bool:
        """Only words, best first: the index can count and rank without reading models."""
        return self.ranked() and not self.filters()[0]

    def ranked_after_filters(self) -> bool:
        """Words and other filters, best first: every match is joined to `models` anyway."""
        return self.ranked() and bool(self.filters()[0])
