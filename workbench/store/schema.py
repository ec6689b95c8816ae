"""Versioned schema migrations, applied in order when a store is opened read-write."""

from __future__ import annotations

from . import rollup
from .sql import literal

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

# Telemetry (OTLP). Raw attributes are kept whole as JSON; the agent fields derived at
# ingest (workbench.ingest.genai) are typed columns so that dashboards aggregate fast.
_AGENT_COLUMNS = """
    agent_name VARCHAR, session_id VARCHAR, prompt_id VARCHAR, operation VARCHAR,
    provider VARCHAR, model VARCHAR, input_tokens BIGINT, output_tokens BIGINT,
    cache_read_tokens BIGINT, cache_creation_tokens BIGINT, reasoning_tokens BIGINT,
    cost_usd DOUBLE, tool_name VARCHAR, is_error BOOLEAN
"""
MIGRATIONS.append(
    (
        2,
        [
            f"""
            CREATE TABLE spans (
                trace_id VARCHAR NOT NULL, span_id VARCHAR NOT NULL, parent_span_id VARCHAR,
                name VARCHAR, kind TINYINT, start_time TIMESTAMP, start_ns BIGINT,
                end_ns BIGINT, duration_ms DOUBLE, status_code TINYINT, status_message VARCHAR,
                service_name VARCHAR, scope_name VARCHAR, scope_version VARCHAR,
                resource JSON, attributes JSON, events INTEGER, links INTEGER,
                {_AGENT_COLUMNS}
            )
            """,
            """
            CREATE TABLE span_events (
                trace_id VARCHAR, span_id VARCHAR, time TIMESTAMP, time_ns BIGINT,
                name VARCHAR, attributes JSON
            )
            """,
            """
            CREATE TABLE span_links (
                trace_id VARCHAR, span_id VARCHAR, linked_trace_id VARCHAR,
                linked_span_id VARCHAR, attributes JSON
            )
            """,
            f"""
            CREATE TABLE logs (
                time TIMESTAMP, time_ns BIGINT, observed_ns BIGINT, severity_number TINYINT,
                severity_text VARCHAR, body VARCHAR, event_name VARCHAR, trace_id VARCHAR,
                span_id VARCHAR, service_name VARCHAR, scope_name VARCHAR, resource JSON,
                attributes JSON, duration_ms DOUBLE, decision VARCHAR,
                {_AGENT_COLUMNS}
            )
            """,
            """
            CREATE TABLE metric_points (
                name VARCHAR, description VARCHAR, unit VARCHAR, type VARCHAR,
                temporality TINYINT, monotonic BOOLEAN, time TIMESTAMP, time_ns BIGINT,
                start_ns BIGINT, value DOUBLE, count BIGINT, sum DOUBLE, min DOUBLE,
                max DOUBLE, bucket_counts BIGINT[], explicit_bounds DOUBLE[], detail JSON,
                service_name VARCHAR, scope_name VARCHAR, resource JSON, attributes JSON,
                agent_name VARCHAR, session_id VARCHAR, model VARCHAR, kind VARCHAR
            )
            """,
        ],
    )
)

# v3: who may write a live run. The server hands the client that starts a run a secret and
# keeps only its SHA-256; appends and the finish must present the secret.
MIGRATIONS.append(
    (
        3,
        [
            """
            CREATE TABLE live_writers (
                run_id VARCHAR PRIMARY KEY,
                secret_sha256 VARCHAR NOT NULL
            )
            """,
        ],
    )
)

# v4: the tests a live run is running right now (replaced with every batch the plugin
# sends, cleared when the run finishes), so a run in progress shows what has started.
MIGRATIONS.append(
    (
        4,
        [
            """
            CREATE TABLE live_running (
                run_id VARCHAR NOT NULL,
                test_id VARCHAR NOT NULL,
                seen_at TIMESTAMP
            )
            """,
        ],
    )
)

# v5: the control plane. Agents (their definition and where they are now), everything that
# happens to them (state changes, transcript, output, resource samples), the permission
# requests waiting for a person, and the append-only audit log of every control action.
MIGRATIONS.append(
    (
        5,
        [
            """
            CREATE TABLE agents (
                agent_id VARCHAR PRIMARY KEY,
                name VARCHAR,
                backend VARCHAR NOT NULL,
                project VARCHAR,
                spec JSON,
                state VARCHAR NOT NULL,
                pid INTEGER,
                pid_started DOUBLE,
                session_id VARCHAR,
                last_error VARCHAR,
                exit_code INTEGER,
                cost_usd DOUBLE,
                restarts INTEGER,
                created_at TIMESTAMP,
                updated_at TIMESTAMP
            )
            """,
            """
            CREATE TABLE agent_events (
                agent_id VARCHAR NOT NULL,
                ts TIMESTAMP NOT NULL,
                kind VARCHAR NOT NULL,
                state VARCHAR,
                text VARCHAR,
                data JSON
            )
            """,
            """
            CREATE TABLE agent_samples (
                agent_id VARCHAR NOT NULL,
                ts TIMESTAMP NOT NULL,
                cpu_percent DOUBLE,
                rss_bytes BIGINT,
                threads INTEGER
            )
            """,
            """
            CREATE TABLE approvals (
                approval_id VARCHAR PRIMARY KEY,
                agent_id VARCHAR NOT NULL,
                session_id VARCHAR,
                project VARCHAR,
                tool VARCHAR,
                input JSON,
                state VARCHAR NOT NULL,
                message VARCHAR,
                decided_by VARCHAR,
                created_at TIMESTAMP,
                decided_at TIMESTAMP
            )
            """,
            """
            CREATE TABLE audit (
                ts TIMESTAMP NOT NULL,
                who VARCHAR,
                role VARCHAR,
                action VARCHAR NOT NULL,
                target VARCHAR,
                params JSON,
                outcome VARCHAR,
                client VARCHAR
            )
            """,
        ],
    )
)

# v6: work and alerts. Queued tasks for agents (and the pools that may start agents for
# them), alert rules and the alerts they fired (with their evidence), and outgoing
# webhooks with a log of every delivery attempt.
MIGRATIONS.append(
    (
        6,
        [
            """
            CREATE TABLE tasks (
                task_id VARCHAR PRIMARY KEY,
                prompt VARCHAR,
                command JSON,
                project VARCHAR,
                priority INTEGER NOT NULL,
                labels JSON,
                deadline TIMESTAMP,
                budget_cost_usd DOUBLE,
                budget_s DOUBLE,
                state VARCHAR NOT NULL,
                agent_id VARCHAR,
                session_id VARCHAR,
                attempt INTEGER,
                failure VARCHAR,
                result VARCHAR,
                cost_usd DOUBLE,
                created_by VARCHAR,
                created_at TIMESTAMP,
                started_at TIMESTAMP,
                ended_at TIMESTAMP
            )
            """,
            """
            CREATE TABLE pools (
                pool VARCHAR PRIMARY KEY,
                template JSON NOT NULL,
                max_agents INTEGER NOT NULL,
                created_at TIMESTAMP
            )
            """,
            """
            CREATE TABLE alert_rules (
                rule_id VARCHAR PRIMARY KEY,
                rule JSON NOT NULL,
                created_at TIMESTAMP,
                updated_at TIMESTAMP
            )
            """,
            """
            CREATE TABLE alerts (
                alert_id VARCHAR PRIMARY KEY,
                rule_id VARCHAR NOT NULL,
                rule_name VARCHAR,
                agent_id VARCHAR,
                severity VARCHAR,
                state VARCHAR NOT NULL,
                title VARCHAR,
                evidence JSON,
                actions JSON,
                fired_at TIMESTAMP,
                acked_by VARCHAR,
                acked_at TIMESTAMP,
                resolved_by VARCHAR,
                resolved_at TIMESTAMP
            )
            """,
            """
            CREATE TABLE webhooks (
                webhook_id VARCHAR PRIMARY KEY,
                url VARCHAR NOT NULL,
                secret VARCHAR,
                events JSON,
                format VARCHAR,
                created_by VARCHAR,
                created_at TIMESTAMP
            )
            """,
            """
            CREATE TABLE webhook_deliveries (
                delivery_id VARCHAR PRIMARY KEY,
                webhook_id VARCHAR NOT NULL,
                event_id VARCHAR,
                event_type VARCHAR,
                state VARCHAR NOT NULL,
                attempts INTEGER,
                last_status INTEGER,
                last_error VARCHAR,
                created_at TIMESTAMP,
                updated_at TIMESTAMP
            )
            """,
        ],
    )
)

# v7: coverage. A report (its totals), each file's line sets, and the lines each test ran —
# stored as run-length ranges ``[first, last, first, last, ...]`` per test and file: a
# test's lines in a file are mostly a few runs, so a 100k-line project with 5,000 tests is
# rows of a few numbers, not a row per line per test.
MIGRATIONS.append(
    (
        7,
        [
            """
            CREATE TABLE coverage_reports (
                report_id VARCHAR PRIMARY KEY,
                project VARCHAR NOT NULL,
                commit_sha VARCHAR,
                branch VARCHAR,
                format VARCHAR,
                source VARCHAR,
                created_at TIMESTAMP,
                files INTEGER,
                statements INTEGER,
                covered INTEGER,
                percent DOUBLE,
                branches INTEGER,
                branches_covered INTEGER,
                contexts INTEGER,
                warnings VARCHAR
            )
            """,
            """
            CREATE TABLE coverage_files (
                report_id VARCHAR NOT NULL,
                path VARCHAR NOT NULL,
                statements INTEGER,
                covered INTEGER,
                percent DOUBLE,
                branches INTEGER,
                branches_covered INTEGER,
                functions INTEGER,
                functions_covered INTEGER,
                statement_ranges INTEGER[],
                covered_ranges INTEGER[],
                partial_lines INTEGER[]
            )
            """,
            """
            CREATE TABLE coverage_tests (
                report_id VARCHAR NOT NULL,
                test_id VARCHAR NOT NULL,
                path VARCHAR NOT NULL,
                ranges INTEGER[]
            )
            """,
        ],
    )
)

# v8: the projects found on the machine (``observatory projects scan``).
MIGRATIONS.append(
    (
        8,
        [
            """
            CREATE TABLE projects (
                path VARCHAR PRIMARY KEY,
                name VARCHAR NOT NULL,
                kind VARCHAR,
                kinds JSON,
                manifests JSON,
                branch VARCHAR,
                mcp_servers JSON,
                scanned_at TIMESTAMP
            )
            """,
        ],
    )
)

# v9: operators' approvals of the MCP servers projects declare (per declaration).
MIGRATIONS.append(
    (
        9,
        [
            """
            CREATE TABLE mcp_approvals (
                project_path VARCHAR NOT NULL,
                server VARCHAR NOT NULL,
                fingerprint VARCHAR NOT NULL,
                approved_by VARCHAR,
                approved_at TIMESTAMP,
                PRIMARY KEY (project_path, server, fingerprint)
            )
            """,
        ],
    )
)

# v10: test runs started from the workbench (``run-tests``, the projects page).
MIGRATIONS.append(
    (
        10,
        [
            """
            CREATE TABLE test_runs (
                id VARCHAR PRIMARY KEY,
                project VARCHAR NOT NULL,
                folder VARCHAR,
                state VARCHAR,
                tests JSON,
                command JSON,
                junit VARCHAR,
                requested_by VARCHAR,
                created_at TIMESTAMP,
                started_at TIMESTAMP,
                ended_at TIMESTAMP,
                exit_code INTEGER,
                pid INTEGER,
                run_id VARCHAR,
                message VARCHAR
            )
            """,
        ],
    )
)

# v11: the agents' figures per hour, kept up to date by the writer (see store/rollup.py),
# filled from the records already stored.
MIGRATIONS.append((11, [*rollup.CREATE, rollup.FILL]))

# v12: a test run's process is known by its start time too, so that a restarted workbench
# stops the run's process group only if it is still the same process (launcher.alive).
MIGRATIONS.append((12, ["ALTER TABLE test_runs ADD COLUMN pid_started DOUBLE"]))

# v13: a project's one identity (workbench/projects/identity.py): ``named`` when a person
# gave the name (scan --name, link, rename: a rescan keeps it and no run renames it),
# ``remote`` (origin's URL) and ``head`` (the commit checked out when scanned), by which
# runs stored under another name are matched to the folder; ``python``, the interpreter
# its test runs use when a person set one.
MIGRATIONS.append((13, [
    "ALTER TABLE projects ADD COLUMN named BOOLEAN DEFAULT false",
    "ALTER TABLE projects ADD COLUMN remote VARCHAR",
    "ALTER TABLE projects ADD COLUMN head VARCHAR",
    "ALTER TABLE projects ADD COLUMN python VARCHAR",
]))


def _rekey_signatures() -> list[str]:
    """Statements that give every stored failure the signature ingest gives it now
    (:func:`workbench.analysis.signatures.cluster_key`), from what ``signatures`` holds:
    the exception type, the suspect (``func (path)``) and the normalised first line, whose
    names are replaced here by the same rules (``NAME_RULES``)."""
    from ..analysis.signatures import MESSAGE_CHARS, NAME_RULES, SUSPECT_PARTS

    text = "coalesce(normalized, '')"
    for pattern, repl in NAME_RULES:
        text = f"regexp_replace({text}, {literal(pattern)}, {literal(repl)}, 'g')"
    part = f"coalesce(regexp_extract(suspect, {literal(SUSPECT_PARTS)}, {{}}), '')"
    return [
        f"""
        CREATE TABLE signature_rekey AS
        SELECT old, exception, suspect, normalized,
               left(sha256(concat_ws(chr(31), coalesce(exception, ''), {part.format(1)},
                   {part.format(2)},
                   CASE WHEN coalesce(suspect, '') <> '' AND coalesce(exception, '') <> ''
                        THEN '' ELSE normalized END)), 16) AS signature
        FROM (SELECT signature AS old, exception, suspect,
                     left({text}, {MESSAGE_CHARS}) AS normalized
              FROM signatures)
        """,
        """
        UPDATE results SET signature = k.signature
        FROM signature_rekey k WHERE results.signature = k.old
        """,
        """
        CREATE TABLE signatures_rekeyed (
            signature VARCHAR PRIMARY KEY,
            exception VARCHAR,
            normalized VARCHAR,
            suspect VARCHAR
        )
        """,
        """
        INSERT INTO signatures_rekeyed
        SELECT signature, min(exception), min(normalized), min(suspect)
        FROM signature_rekey GROUP BY signature
        """,
        "DROP TABLE signatures",
        "ALTER TABLE signatures_rekeyed RENAME TO signatures",
        "DROP TABLE signature_rekey",
    ]


# v14: one bug, one cluster (issue 21). A failure's signature is its exception type and
# suspect frame (function and file name) when it has one; the message, with the names it
# fills in replaced (quoted names, qualified names, paths, object reprs), only when it has
# none. The failures already stored are re-keyed in SQL from the signatures table, by the
# rules ingest uses, so that a bug's old and new failures share one cluster.
MIGRATIONS.append((14, _rekey_signatures()))

# v15: workflows (workbench/workflows/). A workflow's every version is kept (a run names
# the version it ran); a run and each visit of each of its steps, with the task, test run
# or approval the step made — by which a resumed run finds an unfinished step's work again.
MIGRATIONS.append((15, [
    """
    CREATE TABLE workflows (
        workflow_id VARCHAR NOT NULL,
        version INTEGER NOT NULL,
        name VARCHAR NOT NULL,
        description VARCHAR,
        spec JSON NOT NULL,
        created_by VARCHAR,
        created_at TIMESTAMP,
        PRIMARY KEY (workflow_id, version)
    )
    """,
    """
    CREATE TABLE workflow_runs (
        run_id VARCHAR PRIMARY KEY,
        workflow_id VARCHAR NOT NULL,
        version INTEGER NOT NULL,
        name VARCHAR,
        state VARCHAR NOT NULL,
        inputs JSON,
        project VARCHAR,
        started_by VARCHAR,
        created_at TIMESTAMP,
        ended_at TIMESTAMP,
        message VARCHAR,
        cost_usd DOUBLE,
        tokens BIGINT
    )
    """,
    """
    CREATE TABLE workflow_steps (
        run_id VARCHAR NOT NULL,
        node VARCHAR NOT NULL,
        visit INTEGER NOT NULL,
        kind VARCHAR,
        state VARCHAR,
        outcome VARCHAR,
        started_at TIMESTAMP,
        ended_at TIMESTAMP,
        task_id VARCHAR,
        test_run_id VARCHAR,
        approval_id VARCHAR,
        agent_id VARCHAR,
        session_id VARCHAR,
        cost_usd DOUBLE,
        tokens BIGINT,
        output VARCHAR,
        PRIMARY KEY (run_id, node, visit)
    )
    """,
]))

# v16: consoles (workbench/console/). The commands people typed in the workbench's
# project shells, per user and project: searched, and offered for completion.
MIGRATIONS.append((16, [
    """
    CREATE TABLE console_history (
        ts TIMESTAMP NOT NULL,
        who VARCHAR NOT NULL,
        project VARCHAR,
        command VARCHAR NOT NULL,
        console VARCHAR
    )
    """,
]))

# v17: how long each kind of data is kept (store/retention.py), per project; the row with
# project '' is the default for every project without its own.
MIGRATIONS.append((17, [
    """
    CREATE TABLE retention_policies (
        kind VARCHAR NOT NULL,
        project VARCHAR NOT NULL,
        days DOUBLE,
        keep_runs INTEGER,
        archive BOOLEAN NOT NULL DEFAULT false,
        updated_by VARCHAR,
        updated_at TIMESTAMP,
        PRIMARY KEY (kind, project)
    )
    """,
]))

# v18: the signed tokens issued (workbench/tokens.py) — never the token itself — and
# which were revoked before they expired.
MIGRATIONS.append((18, [
    """
    CREATE TABLE issued_tokens (
        jti VARCHAR PRIMARY KEY,
        sub VARCHAR NOT NULL,
        role VARCHAR NOT NULL,
        issued_by VARCHAR,
        issued_at TIMESTAMP,
        expires_at TIMESTAMP,
        revoked_by VARCHAR,
        revoked_at TIMESTAMP
    )
    """,
]))

# v19: OTLP requests answered and not yet written as rows (store/otlp_inbox.py). Since
# the inbox's journal (store/otlp_journal.py) nothing is put here: rows a version before it
# left are moved into the journal at start, so the table stays empty.
MIGRATIONS.append((19, [
    "CREATE SEQUENCE otlp_inbox_ids",
    """
    CREATE TABLE otlp_inbox (
        id BIGINT NOT NULL DEFAULT nextval('otlp_inbox_ids'),
        received_at TIMESTAMP NOT NULL,
        signal VARCHAR NOT NULL,
        body BLOB NOT NULL
    )
    """,
]))

LATEST = MIGRATIONS[-1][0]
