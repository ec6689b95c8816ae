"""Versioned schema migrations, applied in order when a store is opened read-write."""

from __future__ import annotations

#: (version, statements). Append new versions; never edit a released one.
MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            """
            CREATE TABLE runs (
                run_id VARCHAR PRIMARY KEY,
                project VARCHAR NOT NULL,
                branch VARCHAR,
                commit_sha VARCHAR,
                build VARCHAR,
                build_url VARCHAR,
                ci_provider VARCHAR,
                variant VARCHAR,
                source VARCHAR,
                format VARCHAR,
                started_at TIMESTAMP,
                duration_s DOUBLE,
                ingested_at TIMESTAMP DEFAULT current_timestamp,
                status VARCHAR DEFAULT 'complete',
                tests INTEGER,
                passed INTEGER,
                failed INTEGER,
                errors INTEGER,
                skipped INTEGER,
                attempts INTEGER,
                header_tests INTEGER,
                warnings VARCHAR
            )
            """,
            """
            CREATE TABLE results (
                run_id VARCHAR NOT NULL,
                test_id VARCHAR NOT NULL,
                suite VARCHAR,
                classname VARCHAR,
                name VARCHAR,
                params VARCHAR,
                file VARCHAR,
                attempt SMALLINT,
                final BOOLEAN,
                outcome VARCHAR,
                duration_s DOUBLE,
                message VARCHAR,
                error_type VARCHAR,
                details VARCHAR,
                signature VARCHAR
            )
            """,
            """
            CREATE TABLE signatures (
                signature VARCHAR PRIMARY KEY,
                exception VARCHAR,
                normalized VARCHAR,
                suspect VARCHAR
            )
            """,
        ],
    ),
]

LATEST = MIGRATIONS[-1][0]
