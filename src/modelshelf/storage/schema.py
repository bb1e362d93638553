"""Versioned schema migrations: named steps, in order. Each runs once, in its own transaction
(migrate.apply_migrations).

The first one adopts an existing Hikaze Model Manager 2 library as it is (CREATE ... IF NOT EXISTS),
so starting on such a database only adds what is missing and never rewrites data.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "contract tables",
        """
        CREATE TABLE IF NOT EXISTS models(
            sha256 TEXT PRIMARY KEY, path TEXT, name TEXT, type TEXT,
            size_bytes INTEGER, created_at INTEGER, meta_json TEXT);
        CREATE TABLE IF NOT EXISTS tags(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
        CREATE TABLE IF NOT EXISTS model_tags(
            model_hash TEXT REFERENCES models(sha256) ON DELETE CASCADE,
            tag_id INTEGER REFERENCES tags(id),
            PRIMARY KEY(model_hash, tag_id));
        CREATE TABLE IF NOT EXISTS pending_import(
            id INTEGER PRIMARY KEY, path TEXT, sha256 TEXT, name TEXT, type TEXT,
            size_bytes INTEGER, created_at INTEGER, meta_json TEXT);
        CREATE TABLE IF NOT EXISTS pending_model_tags(
            model_id INTEGER REFERENCES pending_import(id) ON DELETE CASCADE,
            tag_id INTEGER REFERENCES tags(id),
            PRIMARY KEY(model_id, tag_id));
        CREATE TABLE IF NOT EXISTS db_meta(key TEXT PRIMARY KEY, value TEXT);
        """,
    ),
    (
        "indexes, image index, hash cache, file journal, history, legacy log",
        """
        CREATE INDEX IF NOT EXISTS models_type ON models(type);
        CREATE INDEX IF NOT EXISTS models_name ON models(name COLLATE NOCASE);
        CREATE INDEX IF NOT EXISTS models_created ON models(created_at);
        CREATE INDEX IF NOT EXISTS model_tags_tag ON model_tags(tag_id);
        CREATE INDEX IF NOT EXISTS pending_model_tags_tag ON pending_model_tags(tag_id);
        -- One row per example image whose three renditions are on disk. It is changed in the
        -- same transaction as the change that writes the files, and reconciled at start-up.
        CREATE TABLE IF NOT EXISTS images(
            model_hash TEXT NOT NULL, seq INTEGER NOT NULL,
            PRIMARY KEY(model_hash, seq)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS hash_cache(
            path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
            inode INTEGER NOT NULL, sha256 TEXT NOT NULL, hashed_at INTEGER NOT NULL);
        -- File operations committed with a database change and not yet carried out.
        CREATE TABLE IF NOT EXISTS file_journal(
            id INTEGER PRIMARY KEY AUTOINCREMENT, created_at INTEGER NOT NULL,
            ops TEXT NOT NULL);
        -- What a model was before an override or merge changed it.
        CREATE TABLE IF NOT EXISTS model_history(
            id INTEGER PRIMARY KEY AUTOINCREMENT, model_hash TEXT NOT NULL,
            pending_id INTEGER, strategy TEXT NOT NULL, changed_at INTEGER NOT NULL,
            previous TEXT NOT NULL, pending TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS model_history_hash ON model_history(model_hash);
        -- The original image of a pending model: images/pending/<pending_id>.<ext>
        CREATE TABLE IF NOT EXISTS pending_images(
            pending_id INTEGER PRIMARY KEY REFERENCES pending_import(id) ON DELETE CASCADE,
            ext TEXT NOT NULL);
        -- Legacy rows already brought in, so a second stage-1 run adds nothing twice.
        CREATE TABLE IF NOT EXISTS legacy_import_log(
            legacy_id INTEGER PRIMARY KEY, target TEXT NOT NULL, sha256 TEXT,
            imported_at INTEGER NOT NULL);
        """,
    ),
    (
        "journal entries that cannot be replayed are set aside, with the reason",
        """
        ALTER TABLE file_journal ADD COLUMN set_aside_at INTEGER;
        ALTER TABLE file_journal ADD COLUMN problem TEXT;
        """,
    ),
    (
        "image content keys: a model's version changes when an image is replaced or moved",
        """
        -- New whenever a file is written under (model_hash, seq); kept when the image moves to
        -- another seq. A model's ETag is derived from its record and these keys in seq order.
        ALTER TABLE images ADD COLUMN content_key INTEGER NOT NULL DEFAULT 0;
        UPDATE images SET content_key = random();
        """,
    ),
    (
        "full-text search over models (FTS5), kept in step by triggers; models by size",
        """
        CREATE INDEX IF NOT EXISTS models_size ON models(size_bytes);
        -- One row per model in the index: its FTS rowid (id) and whether the row must be built
        -- again. Triggers mark rows stale; every change rebuilds them before it commits (see
        -- storage.search), and so does opening the database.
        CREATE TABLE search_docs(
            id INTEGER PRIMARY KEY, sha256 TEXT NOT NULL UNIQUE,
            stale INTEGER NOT NULL DEFAULT 1);
        CREATE INDEX search_docs_stale ON search_docs(id) WHERE stale = 1;
        CREATE VIRTUAL TABLE model_search USING fts5(
            name, files, description, trigger_words, tags,
            prefix = '2 3', tokenize = 'unicode61 remove_diacritics 2');
        CREATE TRIGGER search_model_added AFTER INSERT ON models BEGIN
            INSERT OR IGNORE INTO search_docs(sha256) VALUES (NEW.sha256);
            UPDATE search_docs SET stale = 1 WHERE sha256 = NEW.sha256;
        END;
        CREATE TRIGGER search_model_changed AFTER UPDATE ON models BEGIN
            INSERT OR IGNORE INTO search_docs(sha256) VALUES (OLD.sha256), (NEW.sha256);
            UPDATE search_docs SET stale = 1 WHERE sha256 IN (OLD.sha256, NEW.sha256);
        END;
        CREATE TRIGGER search_model_removed AFTER DELETE ON models BEGIN
            UPDATE search_docs SET stale = 1 WHERE sha256 = OLD.sha256;
        END;
        CREATE TRIGGER search_tag_linked AFTER INSERT ON model_tags BEGIN
            INSERT OR IGNORE INTO search_docs(sha256) VALUES (NEW.model_hash);
            UPDATE search_docs SET stale = 1 WHERE sha256 = NEW.model_hash;
        END;
        CREATE TRIGGER search_tag_relinked AFTER UPDATE ON model_tags BEGIN
            INSERT OR IGNORE INTO search_docs(sha256) VALUES (OLD.model_hash), (NEW.model_hash);
            UPDATE search_docs SET stale = 1 WHERE sha256 IN (OLD.model_hash, NEW.model_hash);
        END;
        CREATE TRIGGER search_tag_unlinked AFTER DELETE ON model_tags BEGIN
            UPDATE search_docs SET stale = 1 WHERE sha256 = OLD.model_hash;
        END;
        CREATE TRIGGER search_tag_renamed AFTER UPDATE OF name ON tags BEGIN
            UPDATE search_docs SET stale = 1
            WHERE sha256 IN (SELECT model_hash FROM model_tags WHERE tag_id = NEW.id);
        END;
        CREATE TRIGGER search_tag_removed AFTER DELETE ON tags BEGIN
            UPDATE search_docs SET stale = 1
            WHERE sha256 IN (SELECT model_hash FROM model_tags WHERE tag_id = OLD.id);
        END;
        -- Existing libraries: every model's row is built when the database is next opened.
        INSERT INTO search_docs(sha256, stale) SELECT sha256, 1 FROM models;
        """,
    ),
    (
        "jobs: long work run in the background, with its progress and outcome",
        """
        -- progress and result are JSON objects; times are milliseconds since the epoch.
        CREATE TABLE IF NOT EXISTS jobs(
            id TEXT PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL,
            created_at INTEGER NOT NULL, started_at INTEGER, finished_at INTEGER,
            progress TEXT NOT NULL, result TEXT, error TEXT);
        CREATE INDEX IF NOT EXISTS jobs_finished ON jobs(finished_at);
        """,
    ),
    (
        "model folders: where each model's files are, and what a scan took from them",
        """
        -- One row per path under the model roots where a model file was found. A file that
        -- is gone keeps its row with present = 0: nothing is deleted.
        CREATE TABLE IF NOT EXISTS model_files(
            path TEXT PRIMARY KEY, sha256 TEXT NOT NULL, type TEXT, size_bytes INTEGER,
            mtime_ns INTEGER, inode INTEGER, device INTEGER, present INTEGER NOT NULL,
            last_seen INTEGER);
        CREATE INDEX IF NOT EXISTS model_files_sha256 ON model_files(sha256, present);
        CREATE INDEX IF NOT EXISTS model_files_inode ON model_files(inode);
        -- What the last scan wrote from a model's files: the location it read, the sidecars'
        -- (size, mtime_ns) it read, the meta keys it set and their values, the tags it added.
        -- A meta key is the scan's to refresh only while its value is still what it wrote.
        CREATE TABLE IF NOT EXISTS file_facts(
            model_hash TEXT PRIMARY KEY REFERENCES models(sha256) ON DELETE CASCADE,
            source_path TEXT, sources TEXT NOT NULL,
            written TEXT NOT NULL, tags TEXT NOT NULL);
        -- Example images a scan added (by the SHA256 of the image file), so each is added once.
        CREATE TABLE IF NOT EXISTS file_images(
            model_hash TEXT NOT NULL REFERENCES models(sha256) ON DELETE CASCADE,
            image_sha256 TEXT NOT NULL,
            PRIMARY KEY(model_hash, image_sha256)) WITHOUT ROWID;
        """,
    ),
    (
        "file names of every location in the full-text index",
        """
        CREATE TRIGGER search_location_added AFTER INSERT ON model_files BEGIN
            UPDATE search_docs SET stale = 1 WHERE sha256 = NEW.sha256;
        END;
        CREATE TRIGGER search_location_changed AFTER UPDATE OF path, sha256 ON model_files BEGIN
            UPDATE search_docs SET stale = 1 WHERE sha256 IN (OLD.sha256, NEW.sha256);
        END;
        CREATE TRIGGER search_location_removed AFTER DELETE ON model_files BEGIN
            UPDATE search_docs SET stale = 1 WHERE sha256 = OLD.sha256;
        END;
        UPDATE search_docs SET stale = 1
        WHERE sha256 IN (SELECT DISTINCT sha256 FROM model_files);
        """,
    ),
    (
        "the legacy import log knows which library each row came from and its pending id",
        """
        -- A legacy library, told apart from others by a fingerprint of its first rows. Rows
        -- logged before libraries were told apart belong to one with no fingerprint, which
        -- the next library stage 1 reads adopts.
        CREATE TABLE legacy_libraries(
            id INTEGER PRIMARY KEY, fingerprint TEXT UNIQUE, source TEXT,
            first_seen_at INTEGER NOT NULL);
        INSERT INTO legacy_libraries(id, fingerprint, source, first_seen_at)
            SELECT 1, NULL, NULL, (SELECT min(imported_at) FROM legacy_import_log)
            WHERE EXISTS (SELECT 1 FROM legacy_import_log);
        CREATE TABLE legacy_import_log_v2(
            library_id INTEGER NOT NULL REFERENCES legacy_libraries(id),
            legacy_id INTEGER NOT NULL, target TEXT NOT NULL, sha256 TEXT, pending_id INTEGER,
            imported_at INTEGER NOT NULL, PRIMARY KEY(library_id, legacy_id));
        INSERT INTO legacy_import_log_v2
            SELECT 1, legacy_id, target, sha256,
                CASE WHEN target = 'pending' THEN legacy_id END, imported_at
            FROM legacy_import_log;
        DROP TABLE legacy_import_log;
        ALTER TABLE legacy_import_log_v2 RENAME TO legacy_import_log;
        CREATE INDEX legacy_import_log_pending ON legacy_import_log(pending_id);
        """,
    ),
    (
        "a search filtered by type reads an index, not the models rows",
        """
        -- A search with `type` looks up every matching model by (type, sha256): with the hash
        -- in the index the big models rows (meta_json) are never read to filter (a frequent
        -- word with a type filter: 12 ms of SQL before, 6.5 after, over 10,000 models).
        DROP INDEX IF EXISTS models_type;
        CREATE INDEX models_type_sha256 ON models(type, sha256);
        """,
    ),
    (
        "the search index keeps one-character prefixes too",
        """
        -- A word of one character ("1" of "SD 1.5" or of a tag "style-1") is a prefix query
        -- that otherwise merges the lists of every word it begins (over 1,000 numbers in a
        -- library of 10,000 models): the bench's tag searches took 2.5 ms of SQL on average
        -- before, 1.1 after. The rows keep their ids; every one is built again at the next
        -- open.
        DROP TABLE model_search;
        CREATE VIRTUAL TABLE model_search USING fts5(
            name, files, description, trigger_words, tags,
            prefix = '1 2 3', tokenize = 'unicode61 remove_diacritics 2');
        UPDATE search_docs SET stale = 1;
        """,
    ),
    (
        "file facts read from every copy of a model, and the problems met reading them",
        """
        -- copies: the (size, mtime_ns) of the sidecars beside each other location read, by
        -- path; problems: [path, reason] of what could not be used, so that a scan that
        -- reads nothing again can still list them.
        ALTER TABLE file_facts ADD COLUMN copies TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE file_facts ADD COLUMN problems TEXT NOT NULL DEFAULT '[]';
        """,
    ),
    (
        "each model's base model beside its row in the index, to filter and count by",
        """
        -- meta_json.base_model when it is text and not empty, written with the model's index
        -- row (storage.search). Filtering or counting by it read every model's meta_json
        -- before: 7 KB a model with its Civitai record, 90 ms for a filtered page and 250 ms
        -- for the list of base models over 10,000 models. Every row is built again at the
        -- next open, which writes each model's base model.
        ALTER TABLE search_docs ADD COLUMN base_model TEXT;
        CREATE INDEX search_docs_base_model ON search_docs(base_model COLLATE NOCASE, base_model)
            WHERE base_model IS NOT NULL;
        UPDATE search_docs SET stale = 1;
        """,
    ),
    (
        "models without a name come last in the name order, read from an index",
        """
        -- The listing's default order (by name, ascending) puts a model whose name is NULL
        -- last, as every sort does; this index keeps that order as models_name keeps the
        -- plain one (a first page of 10,000 models: 0.06 ms with it, 1.7 ms sorting all).
        CREATE INDEX models_name_nulls_last ON models(name IS NULL, name COLLATE NOCASE);
        """,
    ),
    (
        "the description a model's page shows is searched",
        """
        -- storage.search.description_of: without meta_json.description, the opening words
        -- of the one A1111's sidecar, Civitai's record or the file's header gives. Every row
        -- is built again at the next open.
        UPDATE search_docs SET stale = 1;
        """,
    ),
    (
        "each legacy row logged with its creation time, to know its library again",
        """
        -- A legacy library is known by its first rows (id, created_at, path); one whose first
        -- row was deleted, or whose first model's file moved, in the old manager is still
        -- known by the (legacy id, created_at) of the rows logged from it (legacy_log).
        ALTER TABLE legacy_import_log ADD COLUMN created_mark TEXT;
        """,
    ),
    (
        "tags found by their name in any case",
        """
        -- storage.tags.tag_ids_by_names: `anime` typed finds the `Anime` stage 1 brought in,
        -- rather than making a second tag that the filter and the Tags page count apart.
        CREATE INDEX tags_name_nocase ON tags(name COLLATE NOCASE);
        """,
    ),
    (
        "a model named as a person types it comes first in a search",
        """
        -- storage.search.name_tiers_sql: the words of each model's name (search.name_key),
        -- written with its index row, so a search ranks the model whose name is what was
        -- typed first, then those whose name begins with it: ranges of this index. Every
        -- row is built again at the next open, which writes each model's key and its text
        -- folded as a query is (search.folded).
        ALTER TABLE search_docs ADD COLUMN name_key TEXT;
        CREATE INDEX search_docs_name_key ON search_docs(name_key);
        UPDATE search_docs SET stale = 1;
        """,
    ),
    (
        "names sort as people read their numbers",
        """
        -- storage.search.name_order: a model's name folded, each number in it by its value
        -- ("v2" before "v10"), written with its index row; the listings' name order reads
        -- it. Two indexes, as models_name and models_name_nulls_last served the name
        -- before: ascending puts the models without a name last through the second, and
        -- descending reads the first backwards. Every row is built again at the next open.
        ALTER TABLE search_docs ADD COLUMN name_order TEXT;
        CREATE INDEX search_docs_name_order ON search_docs(name_order, sha256);
        CREATE INDEX search_docs_name_order_nulls_last
            ON search_docs(name_order IS NULL, name_order, sha256);
        UPDATE search_docs SET stale = 1;
        """,
    ),
    (
        "a search lists the names that begin with what was typed with their numbers by value",
        """
        -- storage.search.name_rank: each model's name_key with its numbers written by value;
        -- name_tiers_sql reads the tiers of a search as ranges of this index, in its order
        -- ("pony v2" before "pony v10", as the listings order names). Every row is built
        -- again at the next open.
        ALTER TABLE search_docs ADD COLUMN name_rank TEXT;
        CREATE INDEX search_docs_name_rank ON search_docs(name_rank);
        UPDATE search_docs SET stale = 1;
        """,
    ),
    (
        "the tag each legacy tag became is logged",
        """
        -- domain.legacy_tags: a later run of stage 1 takes the tag a legacy tag became
        -- (renamed or merged here since), and makes no tag deleted here again (tag_id NULL,
        -- set by storage.tags.delete_tag). Tags brought in before this step are found by
        -- their name once more, then logged.
        CREATE TABLE legacy_tag_log(
            library_id INTEGER NOT NULL REFERENCES legacy_libraries(id),
            legacy_id INTEGER NOT NULL, tag_id INTEGER, PRIMARY KEY(library_id, legacy_id));
        CREATE INDEX legacy_tag_log_tag ON legacy_tag_log(tag_id);
        """,
    ),
    (
        "the description LoRA Manager keeps is searched",
        """
        -- storage.search.description_of: LoRA Manager's (its civitai.description, then its
        -- modelDescription) after Civitai's. Every row is built again at the next open.
        UPDATE search_docs SET stale = 1;
        """,
    ),
    (
        "a sort by date or size reads an index, its ties in the name order",
        """
        -- storage.model_filter.order_by: ascending puts the models without a value last
        -- through these, as models_name_nulls_last does for names; descending reads
        -- models_created and models_size backwards. The ties, read beside the index
        -- (search_docs.name_order), are sorted among themselves only.
        CREATE INDEX models_created_nulls_last ON models(created_at IS NULL, created_at);
        CREATE INDEX models_size_nulls_last ON models(size_bytes IS NULL, size_bytes);
        """,
    ),
    (
        "the pending queue's generation, moved by every change of a pending model's record",
        """
        -- web.migration_api.pending_models: the queue's answer is tagged by this number, and
        -- a client holding the tag is answered 304 without the queue being read (the Pending
        -- page asks every few seconds while shown). Triggers move it, so every writer does:
        -- this service, its command line, another program. A record is its row, its tags
        -- (by name) and whether it has an image.
        CREATE TABLE pending_queue(
            id INTEGER PRIMARY KEY CHECK (id = 1), generation INTEGER NOT NULL);
        INSERT INTO pending_queue VALUES (1, 0);
        CREATE TRIGGER pending_queue_import_insert AFTER INSERT ON pending_import
        BEGIN UPDATE pending_queue SET generation = generation + 1; END;
        CREATE TRIGGER pending_queue_import_update AFTER UPDATE ON pending_import
        BEGIN UPDATE pending_queue SET generation = generation + 1; END;
        CREATE TRIGGER pending_queue_import_delete AFTER DELETE ON pending_import
        BEGIN UPDATE pending_queue SET generation = generation + 1; END;
        CREATE TRIGGER pending_queue_model_tags_insert AFTER INSERT ON pending_model_tags
        BEGIN UPDATE pending_queue SET generation = generation + 1; END;
        CREATE TRIGGER pending_queue_model_tags_update AFTER UPDATE ON pending_model_tags
        BEGIN UPDATE pending_queue SET generation = generation + 1; END;
        CREATE TRIGGER pending_queue_model_tags_delete AFTER DELETE ON pending_model_tags
        BEGIN UPDATE pending_queue SET generation = generation + 1; END;
        CREATE TRIGGER pending_queue_images_insert AFTER INSERT ON pending_images
        BEGIN UPDATE pending_queue SET generation = generation + 1; END;
        CREATE TRIGGER pending_queue_images_update AFTER UPDATE ON pending_images
        BEGIN UPDATE pending_queue SET generation = generation + 1; END;
        CREATE TRIGGER pending_queue_images_delete AFTER DELETE ON pending_images
        BEGIN UPDATE pending_queue SET generation = generation + 1; END;
        CREATE TRIGGER pending_queue_tag_update AFTER UPDATE ON tags
        WHEN EXISTS (SELECT 1 FROM pending_model_tags WHERE tag_id = OLD.id)
        BEGIN UPDATE pending_queue SET generation = generation + 1; END;
        CREATE TRIGGER pending_queue_tag_delete AFTER DELETE ON tags
        WHEN EXISTS (SELECT 1 FROM pending_model_tags WHERE tag_id = OLD.id)
        BEGIN UPDATE pending_queue SET generation = generation + 1; END;
        """,
    ),
]
