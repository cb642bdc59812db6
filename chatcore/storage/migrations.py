"""Numbered schema migrations, applied top to bottom, each in its own transaction with its version.

DuckDB runs a multi-statement string in autocommit, so every migration is a list of statements
executed between BEGIN and COMMIT together with the bump of `schema_version`.
"""

from __future__ import annotations

import duckdb

from chatcore.storage import history, rollup

UNTAGGED = (
    "NOT regexp_matches(regexp_extract(model, '[^/]*$'), '[:@]') "
    "AND NOT regexp_matches(model, '\\s') AND regexp_extract(model, '[^/]*$') <> ''"
)

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "conversations, messages and generation runs",
        [
            """
            CREATE TABLE conversations (
                id VARCHAR PRIMARY KEY,
                title VARCHAR NOT NULL,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )
            """,
            "CREATE SEQUENCE messages_id_seq",
            """
            CREATE TABLE messages (
                id BIGINT PRIMARY KEY DEFAULT nextval('messages_id_seq'),
                conversation_id VARCHAR NOT NULL,
                role VARCHAR NOT NULL,
                content VARCHAR NOT NULL,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                superseded BOOLEAN NOT NULL DEFAULT false
            )
            """,
            "CREATE INDEX messages_conversation ON messages (conversation_id)",
            "CREATE SEQUENCE runs_id_seq",
            """
            CREATE TABLE runs (
                id BIGINT PRIMARY KEY DEFAULT nextval('runs_id_seq'),
                conversation_id VARCHAR NOT NULL,
                message_id BIGINT NOT NULL,
                model VARCHAR NOT NULL,
                backend VARCHAR NOT NULL,
                host VARCHAR NOT NULL,
                options JSON NOT NULL,
                status VARCHAR NOT NULL,
                error VARCHAR,
                started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                finished_at TIMESTAMPTZ,
                ttft_ms DOUBLE,
                prompt_tokens INTEGER,
                completion_tokens INTEGER,
                total_duration_ns BIGINT,
                load_duration_ns BIGINT,
                prompt_eval_duration_ns BIGINT,
                eval_duration_ns BIGINT,
                done_reason VARCHAR,
                context_dropped INTEGER NOT NULL DEFAULT 0,
                prompt_chars INTEGER,
                num_ctx INTEGER
            )
            """,
            "CREATE INDEX runs_conversation ON runs (conversation_id)",
            "CREATE INDEX runs_message ON runs (message_id)",
        ],
    ),
    (
        2,
        "a per-conversation summary and a case-folded copy of the text for History",
        [
            # Both refreshed on read by chatcore/history.py for conversations whose updated_at
            # moved; the folded text spares every search lowercasing every message.
            """
            CREATE TABLE conversation_summaries (
                conversation_id VARCHAR PRIMARY KEY,
                updated_at TIMESTAMPTZ NOT NULL,
                messages INTEGER NOT NULL,
                tokens BIGINT NOT NULL,
                models VARCHAR[] NOT NULL
            )
            """,
            """
            CREATE TABLE message_search (
                message_id BIGINT NOT NULL,
                conversation_id VARCHAR NOT NULL,
                active_at TIMESTAMPTZ NOT NULL,  -- the conversation's updated_at
                folded VARCHAR NOT NULL
            )
            """,
        ],
    ),
    (
        3,
        "compare rounds, the runs each round fanned out to, and the votes that judge them",
        [
            "CREATE SEQUENCE compare_rounds_id_seq",
            """
            CREATE TABLE compare_rounds (
                id BIGINT PRIMARY KEY DEFAULT nextval('compare_rounds_id_seq'),
                prompt VARCHAR NOT NULL,
                blind BOOLEAN NOT NULL,
                options JSON NOT NULL,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )
            """,
            # One row per column that reached a model: its letter, and the conversation and run
            # ChatService.send created for it (a compared answer is an ordinary conversation).
            """
            CREATE TABLE compare_entries (
                round_id BIGINT NOT NULL,
                label VARCHAR NOT NULL,
                position INTEGER NOT NULL,
                conversation_id VARCHAR NOT NULL,
                run_id BIGINT NOT NULL,
                PRIMARY KEY (round_id, label)
            )
            """,
            "CREATE INDEX compare_entries_conversation ON compare_entries (conversation_id)",
            "CREATE SEQUENCE votes_id_seq",
            # outcome: 'best' (winner_label names the best column), 'tie' or 'all_bad'.
            """
            CREATE TABLE votes (
                id BIGINT PRIMARY KEY DEFAULT nextval('votes_id_seq'),
                round_id BIGINT NOT NULL UNIQUE,
                outcome VARCHAR NOT NULL,
                winner_label VARCHAR,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )
            """,
        ],
    ),
    (
        4,
        "Ollama hosts added on the Models page",
        [
            """
            CREATE TABLE ollama_hosts (
                url VARCHAR PRIMARY KEY,
                added_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )
            """,
        ],
    ),
    (
        5,
        "one name per model: Ollama's untagged names stored as name:latest",
        [
            # chatcore.types.canonical_model in SQL, for Ollama's runs: no tag after the last
            # '/' (and no digest, no blank) means ':latest'.
            f"UPDATE runs SET model = model || ':latest' WHERE backend = 'ollama' AND {UNTAGGED}",
            # History's summaries list each conversation's models: recount them from the runs.
            """
            UPDATE conversation_summaries s SET models = used.models
            FROM (
                SELECT conversation_id, list(DISTINCT model ORDER BY model) AS models
                FROM runs GROUP BY conversation_id
            ) used
            WHERE used.conversation_id = s.conversation_id AND s.models <> used.models
            """,
        ],
    ),
    (
        6,
        "OpenAI-compatible hosts; each run's attempts (retries before the first token) and client",
        [
            # The API key is kept here only when typed in; `api_key_env` names an environment
            # variable to read it from instead, so the key never reaches the file.
            """
            CREATE TABLE openai_hosts (
                url VARCHAR PRIMARY KEY,
                api_key VARCHAR,
                api_key_env VARCHAR,
                added_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )
            """,
            # attempts: hosts tried before one answered (1: the first did); host is the one that
            # answered. client: who sent the request through the proxies (NULL: the dashboard).
            "ALTER TABLE runs ADD COLUMN attempts INTEGER DEFAULT 1",
            "ALTER TABLE runs ADD COLUMN client VARCHAR",
        ],
    ),
    (
        7,
        "each run's request id, the key to its line in the log",
        ["ALTER TABLE runs ADD COLUMN request_id VARCHAR"],
    ),
    (
        8,
        "reasoning kept apart from the answer, its metrics, and images attached to messages",
        [
            # DuckDB cannot alter a table that an index depends on: drop, alter, index again.
            "DROP INDEX messages_conversation",
            "ALTER TABLE messages ADD COLUMN thinking VARCHAR DEFAULT ''",
            "CREATE INDEX messages_conversation ON messages (conversation_id)",
            "DROP INDEX runs_conversation",
            "DROP INDEX runs_message",
            "ALTER TABLE runs ADD COLUMN answer_ms DOUBLE",
            "ALTER TABLE runs ADD COLUMN thinking_ms DOUBLE",
            "ALTER TABLE runs ADD COLUMN thinking_tokens INTEGER",
            "ALTER TABLE runs ADD COLUMN answer_tokens INTEGER",
            "CREATE INDEX runs_conversation ON runs (conversation_id)",
            "CREATE INDEX runs_message ON runs (message_id)",
            # An image is stored once however many messages carry it (kept by its hash).
            """
            CREATE TABLE images (
                sha256 VARCHAR PRIMARY KEY,
                mime VARCHAR NOT NULL,
                bytes INTEGER NOT NULL,
                data BLOB NOT NULL,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )
            """,
            """
            CREATE TABLE message_images (
                message_id BIGINT NOT NULL,
                position INTEGER NOT NULL,
                sha256 VARCHAR NOT NULL,
                PRIMARY KEY (message_id, position)
            )
            """,
        ],
    ),
    (
        9,
        "the knowledge base: collections, documents, chunks with their keyword terms, and the "
        "passages each reply was given",
        [
            # Vectors live in one table per size, chunk_vectors_<n> (FLOAT[n] needs a fixed n),
            # made by chatcore/storage/knowledge.py when the first vector of that size arrives.
            """
            CREATE TABLE collections (
                name VARCHAR PRIMARY KEY,
                embedding_model VARCHAR NOT NULL,
                dimensions INTEGER,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )
            """,
            "CREATE SEQUENCE documents_id_seq",
            """
            CREATE TABLE documents (
                id BIGINT PRIMARY KEY DEFAULT nextval('documents_id_seq'),
                collection VARCHAR NOT NULL,
                name VARCHAR NOT NULL,
                media_type VARCHAR NOT NULL,
                size_bytes BIGINT NOT NULL,
                status VARCHAR NOT NULL,
                error VARCHAR,
                chunk_count INTEGER NOT NULL DEFAULT 0,
                embedding_model VARCHAR,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                indexed_at TIMESTAMPTZ
            )
            """,
            "CREATE SEQUENCE chunks_id_seq",
            """
            CREATE TABLE chunks (
                id BIGINT PRIMARY KEY DEFAULT nextval('chunks_id_seq'),
                document_id BIGINT NOT NULL,
                collection VARCHAR NOT NULL,
                position INTEGER NOT NULL,
                heading VARCHAR,
                page INTEGER,
                start_char INTEGER NOT NULL,
                term_count INTEGER NOT NULL,
                text VARCHAR NOT NULL
            )
            """,
            "CREATE INDEX chunks_document ON chunks (document_id)",
            # Keyword postings: a term (a word, or two CJK characters) and its count in a chunk.
            """
            CREATE TABLE chunk_terms (
                chunk_id BIGINT NOT NULL,
                collection VARCHAR NOT NULL,
                term VARCHAR NOT NULL,
                tf INTEGER NOT NULL
            )
            """,
            """
            CREATE TABLE run_retrievals (
                run_id BIGINT PRIMARY KEY,
                collections VARCHAR[] NOT NULL,
                retrieval_ms DOUBLE NOT NULL,
                chunks_used INTEGER NOT NULL
            )
            """,
            """
            CREATE TABLE run_citations (
                run_id BIGINT NOT NULL,
                number INTEGER NOT NULL,
                chunk_id BIGINT NOT NULL,
                document_id BIGINT NOT NULL,
                document_name VARCHAR NOT NULL,
                collection VARCHAR NOT NULL,
                heading VARCHAR,
                page INTEGER,
                text VARCHAR NOT NULL,
                score DOUBLE NOT NULL,
                similarity DOUBLE,
                PRIMARY KEY (run_id, number)
            )
            """,
        ],
    ),
    (
        10,
        "prompt suites, their runs and cells, pairwise votes and judge verdicts",
        [
            "CREATE SEQUENCE suites_id_seq",
            """
            CREATE TABLE suites (
                id BIGINT PRIMARY KEY DEFAULT nextval('suites_id_seq'),
                name VARCHAR NOT NULL,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )
            """,
            """
            CREATE TABLE suite_prompts (
                suite_id BIGINT NOT NULL,
                position INTEGER NOT NULL,
                prompt VARCHAR NOT NULL,
                category VARCHAR,
                reference VARCHAR,
                PRIMARY KEY (suite_id, position)
            )
            """,
            "CREATE SEQUENCE suite_runs_id_seq",
            # presets: a JSON list of GenerationParams (each with the run's seed); state:
            # running | done | stopped. A run still 'running' when the app starts is resumed.
            """
            CREATE TABLE suite_runs (
                id BIGINT PRIMARY KEY DEFAULT nextval('suite_runs_id_seq'),
                suite_id BIGINT NOT NULL,
                models JSON NOT NULL,
                presets JSON NOT NULL,
                judge VARCHAR,
                state VARCHAR NOT NULL,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                finished_at TIMESTAMPTZ
            )
            """,
            # One row per attempt at a cell (prompt x model x preset), appended, never updated:
            # the newest is the cell; a re-run adds one. run_id is NULL when the model was
            # refused before anything was sent (error says why).
            "CREATE SEQUENCE suite_cells_id_seq",
            """
            CREATE TABLE suite_cells (
                id BIGINT PRIMARY KEY DEFAULT nextval('suite_cells_id_seq'),
                suite_run_id BIGINT NOT NULL,
                prompt_index INTEGER NOT NULL,
                model VARCHAR NOT NULL,
                preset_index INTEGER NOT NULL,
                conversation_id VARCHAR,
                run_id BIGINT,
                error VARCHAR,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )
            """,
            "CREATE INDEX suite_cells_run ON suite_cells (suite_run_id)",
            # Human votes on two runs that answered the same prompt.
            "CREATE SEQUENCE pair_votes_id_seq",
            """
            CREATE TABLE pair_votes (
                id BIGINT PRIMARY KEY DEFAULT nextval('pair_votes_id_seq'),
                a_run_id BIGINT NOT NULL,
                b_run_id BIGINT NOT NULL,
                outcome VARCHAR NOT NULL,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )
            """,
            # The steps of a collaboration (draft, critique, revise; or answers then synthesis):
            # each an ordinary run, grouped; the last step's run is the suite cell's answer.
            """
            CREATE TABLE collaboration_steps (
                group_id VARCHAR NOT NULL,
                collaboration VARCHAR NOT NULL,
                step INTEGER NOT NULL,
                role VARCHAR NOT NULL,
                run_id BIGINT NOT NULL
            )
            """,
            # A judge model's verdicts, apart from human votes: asked twice with the answers
            # swapped; outcome is set only when both orders agree.
            "CREATE SEQUENCE judge_verdicts_id_seq",
            """
            CREATE TABLE judge_verdicts (
                id BIGINT PRIMARY KEY DEFAULT nextval('judge_verdicts_id_seq'),
                a_run_id BIGINT NOT NULL,
                b_run_id BIGINT NOT NULL,
                judge_model VARCHAR NOT NULL,
                rubric VARCHAR NOT NULL,
                first_verdict VARCHAR,
                second_verdict VARCHAR,
                outcome VARCHAR,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )
            """,
        ],
    ),
    (
        11,
        "conversations as message trees: each message's parent, forks, and the open branch",
        [
            # DuckDB cannot alter a table that an index depends on: drop, alter, index again.
            "DROP INDEX messages_conversation",
            # parent_id: the message this one follows (NULL: a first message). forked_from: the
            # message a fork copied (its run stays with the original; a run counts once).
            "ALTER TABLE messages ADD COLUMN parent_id BIGINT",
            "ALTER TABLE messages ADD COLUMN forked_from BIGINT",
            "CREATE INDEX messages_conversation ON messages (conversation_id)",
            # The old dialogue becomes one chain: each message follows the newest visible one
            # before it, so a superseded reply and the reply that replaced it are siblings.
            """
            UPDATE messages m SET parent_id = chain.parent
            FROM (
                SELECT id, max(CASE WHEN NOT superseded THEN id END) OVER (
                    PARTITION BY conversation_id ORDER BY id
                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
                ) AS parent
                FROM messages
            ) chain
            WHERE chain.id = m.id AND chain.parent IS NOT NULL
            """,
            # The message the user last looked at; the branch through it is the open one.
            """
            CREATE TABLE open_branches (
                conversation_id VARCHAR PRIMARY KEY,
                message_id BIGINT NOT NULL
            )
            """,
        ],
    ),
    (
        12,
        "presets, and how each run's prompt was fitted into its context window",
        [
            # A named set of sidebar parameters (GenerationParams fields, as JSON).
            """
            CREATE TABLE presets (
                name VARCHAR PRIMARY KEY,
                params JSON NOT NULL,
                updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )
            """,
            # One row per run the chat service fitted: its estimate of the prompt before
            # sending (to correct the next estimate by the prompt_eval_count that came back),
            # the window it chose and what it left out or summarised.
            """
            CREATE TABLE run_context (
                run_id BIGINT PRIMARY KEY,
                conversation_id VARCHAR NOT NULL,
                model VARCHAR NOT NULL,
                estimated_tokens INTEGER NOT NULL,
                window_tokens INTEGER NOT NULL,
                dropped INTEGER NOT NULL DEFAULT 0,
                summarised INTEGER NOT NULL DEFAULT 0
            )
            """,
            "CREATE INDEX run_context_conversation ON run_context (conversation_id)",
            # With CONTEXT_OVERFLOW=summarise: a note by the conversation's model summarising
            # its first `covered` context messages, valid while those still hash to
            # covered_hash (another branch, an edit: another prefix, another summary).
            """
            CREATE TABLE context_summaries (
                conversation_id VARCHAR NOT NULL,
                covered INTEGER NOT NULL,
                covered_hash VARCHAR NOT NULL,
                model VARCHAR NOT NULL,
                summary VARCHAR NOT NULL,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                PRIMARY KEY (conversation_id, covered_hash)
            )
            """,
        ],
    ),
    # Stats under load: finished runs summed per quarter hour and their timings' digests per
    # day, filled from every run there is (chatcore/storage/rollup.py).
    (13, "the Stats rollup and digests, backfilled", rollup.backfill()),
    (
        14,
        "a conversation's client in its summary: History groups the proxies' conversations",
        [
            "ALTER TABLE conversation_summaries ADD COLUMN client VARCHAR",
            """
            UPDATE conversation_summaries SET client = used.client
            FROM (
                SELECT conversation_id, max(client) AS client FROM runs
                WHERE client IS NOT NULL GROUP BY conversation_id
            ) used
            WHERE used.conversation_id = conversation_summaries.conversation_id
            """,
        ],
    ),
    # Stats under load: the rest of a page load's figures kept as runs finish (the
    # conversations, reply lengths and model switches; chatcore/storage/rollup.py), backfilled.
    (16, "Stats summaries of conversations, reply lengths and switches", rollup.backfill_16()),
    (
        17,
        "a run's tool calls: what a proxied model asked its client to call, as JSON",
        ["ALTER TABLE runs ADD COLUMN tool_calls VARCHAR"],
    ),
    (
        18,
        "how many of a run's left-out messages a summary note stood for",
        [
            # DuckDB alters no table an index depends on: the indexes go and come back.
            "DROP INDEX runs_conversation",
            "DROP INDEX runs_message",
            "ALTER TABLE runs ADD COLUMN context_summarised INTEGER NOT NULL DEFAULT 0",
            "CREATE INDEX runs_conversation ON runs (conversation_id)",
            "CREATE INDEX runs_message ON runs (message_id)",
        ],
    ),
    (
        19,
        "History's search words: each conversation's words, where they first occur and how often",
        [
            # Kept beside message_search by chatcore/storage/history.py; filled here from it,
            # so a rare word stops costing a read of all the folded text from the first search.
            """
            CREATE TABLE search_words (
                word VARCHAR NOT NULL,
                conversation_id VARCHAR NOT NULL,
                active_at TIMESTAMPTZ NOT NULL,  -- as message_search's: the summary's updated_at
                first_message BIGINT NOT NULL,  -- the conversation's first message holding it
                messages INTEGER NOT NULL  -- how many of the conversation's messages hold it
            )
            """,
            history.words_insert("SELECT * FROM message_search"),
        ],
    ),
]


def applied_versions(con: duckdb.DuckDBPyConnection) -> set[int]:
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    return {int(row[0]) for row in con.execute("SELECT version FROM schema_version").fetchall()}


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    return max(applied_versions(con), default=0)


def apply_migrations(con: duckdb.DuckDBPyConnection) -> int:
    """Apply, in order, every migration this file has not recorded yet; returns the version.

    Missing numbers are applied even below the highest one recorded: a database made by a build
    that had migration 3 but not yet 2 still gets 2.
    """
    applied = applied_versions(con)
    for number, _title, statements in MIGRATIONS:
        if number in applied:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            for statement in statements:
                con.execute(statement)
            con.execute("INSERT INTO schema_version VALUES (?)", [number])
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
    return current_version(con)
