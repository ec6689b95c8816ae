"""Data out and back in: tables as Parquet (zstd), CSV or JSON lines, written by DuckDB's
own ``COPY`` (streamed: memory stays bounded whatever the size), with a manifest; and the
import of such an export into a new file.

Every table of one export is read in one transaction, so the files agree with each other
(a run's results are there with the run) while ingest goes on.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import rollup
from .kinds import INTERNAL, KINDS, TABLES, Filter, Table, kinds_of, where
from .sql import literal

if TYPE_CHECKING:
    from .store import Store

FORMATS = {"parquet": ("parquet", "FORMAT parquet, COMPRESSION zstd"),
           "csv": ("csv", "FORMAT csv, HEADER"),
           "jsonl": ("jsonl", "FORMAT json")}
MANIFEST = "manifest.json"
#: Rows per file of a partitioned export before DuckDB starts another.
PARTITION_ROWS = 1_000_000
Progress = Callable[[str, int, int], None]  # (table, rows written, tables done)


class ExportError(ValueError):
    """An export or import that cannot be done, with the reason on one line."""


def tables_for(store: Store, kinds: list[str] | None,
               only: list[str] | None = None) -> list[Table]:
    """The tables an export of ``kinds`` writes; ``all`` is every table of the file (the
    settings too: projects, rules, webhooks, workflows), so that an import restores it.
    ``only``: these tables of the kinds instead (ValueError for another)."""
    if only:
        bad = [n for n in only if n not in TABLES]
        if bad:
            raise ExportError(f"no table {bad[0]!r} to export (one of {', '.join(TABLES)})")
        return [TABLES[n] for n in only]
    names = kinds_of(kinds)
    if kinds and "all" not in kinds:
        return [t for k in names for t in KINDS[k]]
    present = store.tables()
    known = [t for k in names for t in KINDS[k] if t.name in present]
    rest = [Table(n) for n in present if n not in TABLES and n not in INTERNAL]
    return known + rest


def export(store: Store, dest: str | Path, kinds: list[str] | None = None,
           fmt: str = "parquet", flt: Filter | None = None, partition: bool = False,
           progress: Progress | None = None, only: list[str] | None = None
           ) -> dict[str, Any]:
    """Write the tables of ``kinds`` kept by ``flt`` into the folder ``dest`` (which must
    not exist, or be empty) and return the manifest, also written as ``manifest.json``.

    ``partition``: a dated table goes to a folder per day (``day=YYYY-MM-DD/``, Hive
    style, at most :data:`PARTITION_ROWS` rows a file), for exports too big for one file.
    ``only``: just these tables (names of :data:`~workbench.store.kinds.TABLES`).
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    flt = flt or Filter()
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ExportError(f"{dest}: exists and is not an empty folder")
    tables = tables_for(store, kinds, only)
    ext, options = FORMATS[fmt]
    dest.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {
        "format": fmt, "schema_version": store.schema_version,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": str(store.path), "kinds": [] if only else kinds_of(kinds),
        "filter": {"project": flt.project,
                   "since": flt.since.isoformat() if flt.since else None,
                   "until": flt.until.isoformat() if flt.until else None},
        "tables": {}}
    shared = store.shared_views()
    if partition and any(t.name in shared for t in tables):
        raise ExportError(f"{store.url}: a partitioned export is the file's; export whole "
                          "tables, or use ClickHouse's own tools")
    try:
        with store.reading() as cur:
            cur.execute("BEGIN TRANSACTION")  # one snapshot for every table
            for i, table in enumerate(tables):
                if table.name in shared:  # (streamed from ClickHouse, through DuckDB's COPY)
                    cond, args = "TRUE", []
                    read = _from_shared(store, cur, table, shared[table.name], flt)
                    select = f"SELECT * FROM {read}"
                else:
                    cond, args = where(table, flt)
                    select = f"SELECT * FROM {table.name} WHERE {cond}"
                if partition and table.time:
                    target = dest / table.name
                    sql = (f"COPY (SELECT *, strftime({table.time}, '%Y-%m-%d') AS day FROM "
                           f"({select})) TO {literal(target)} ({options}, PARTITION_BY (day), "
                           f"FILENAME_PATTERN 'part-{{i}}', FILE_SIZE_BYTES '256MB')")
                    files = None
                else:
                    target = dest / f"{table.name}.{ext}"
                    sql = f"COPY ({select}) TO {literal(target)} ({options})"
                    files = [target.name]
                rows = cur.execute(sql, args).fetchone()[0]
                if files is None:
                    files = sorted(str(p.relative_to(dest))
                                   for p in target.rglob(f"*.{_suffix(ext)}"))
                manifest["tables"][table.name] = {
                    "rows": int(rows), "files": files,
                    "partitioned": partition and bool(table.time)}
                if progress:
                    progress(table.name, int(rows), i + 1)
            cur.execute("COMMIT")
    except Exception:
        shutil.rmtree(dest, ignore_errors=True)  # nothing half-written is left to import
        raise
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _from_shared(store: Store, cur, table: Table, view: str, flt: Filter) -> str:
    """``table``'s rows that ``flt`` keeps, read from the shared store's ``view`` as a
    stream of Arrow batches registered in ``cur`` (its file's columns, in its order); the
    name to read them by."""
    columns = [r[0] for r in cur.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = ? AND "
        "schema_name = 'main' ORDER BY column_index", [table.name]).fetchall()]
    cond, params = store.shared_where(table, flt)
    name = f"_shared_{table.name}"
    cur.register(name, store.ch_stream(
        f"SELECT {', '.join(columns)} FROM {view} WHERE {cond}", params))
    return name


def _suffix(ext: str) -> str:
    # (DuckDB names a partitioned JSON file .json whatever was asked)
    return "json" if ext == "jsonl" else ext


def read_manifest(src: str | Path) -> dict[str, Any]:
    """The manifest of the export in ``src`` (ExportError naming what is wrong)."""
    path = Path(src) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ExportError(f"{src}: not an export of the workbench (no {MANIFEST})") from None
    except (OSError, ValueError) as err:
        raise ExportError(f"{path}: cannot be read: {err}") from None
    if not isinstance(manifest, dict) or manifest.get("format") not in FORMATS or \
            not isinstance(manifest.get("tables"), dict):
        raise ExportError(f"{path}: not a manifest of the workbench's export")
    return manifest


def import_export(store: Store, src: str | Path,
                  progress: Progress | None = None) -> dict[str, int]:
    """Store the export in ``src`` into ``store``, which must hold no data yet (a new
    file); every table in one transaction, so that a bad file stores nothing. Returns the
    rows stored per table, which equal the manifest's or nothing is stored."""
    src = Path(src)
    manifest = read_manifest(src)
    if manifest.get("schema_version", 0) > store.schema_version:
        raise ExportError(f"{src}: exported by a newer workbench (schema "
                          f"v{manifest['schema_version']}; this one has "
                          f"v{store.schema_version})")
    present = set(store.tables())
    unknown = [t for t in manifest["tables"] if t not in present]
    if unknown:
        raise ExportError(f"{src}: table {unknown[0]!r} is not one this workbench has")
    busy = [t for t in manifest["tables"]
            if store.sql(f"SELECT count(*) AS n FROM (SELECT 1 FROM {t} LIMIT 1)")["n"][0]]
    if busy:
        raise ExportError(f"{store.path}: already holds {busy[0]} rows; import into a new "
                          "file (--db NEW.duckdb)")
    fmt = manifest["format"]
    counts: dict[str, int] = {}

    def load(cur) -> dict[str, int]:
        for i, (name, info) in enumerate(manifest["tables"].items()):
            files = [src / f for f in info.get("files", [])]
            outside = [f for f in files if not f.resolve().is_relative_to(src.resolve())]
            if outside:  # (a manifest names files of its own folder, nothing else)
                raise ExportError(f"{src}: the manifest names {outside[0]}, outside the export")
            missing = [f for f in files if not f.is_file()]
            if missing:
                raise ExportError(f"{missing[0]}: named by the manifest, not there")
            if not files:
                counts[name] = 0
                continue
            listed = "[" + ", ".join(literal(f) for f in files) + "]"
            reader = _reader(cur, name, fmt, listed, bool(info.get("partitioned")))
            drop = " EXCLUDE (day)" if info.get("partitioned") else ""
            if name in rollup.TIME_COLUMN:  # a new file's stamps start again at 1
                drop += " REPLACE (NULL::BIGINT AS seq)"
            n = cur.execute(f"INSERT INTO {name} BY NAME SELECT *{drop} FROM {reader}"
                            ).fetchone()[0]
            if n != info.get("rows"):
                raise ExportError(f"{src}: {name} has {n} rows, the manifest says "
                                  f"{info.get('rows')}")
            counts[name] = int(n)
            if progress:
                progress(name, int(n), i + 1)
        rollup.rebuild(cur)
        return counts

    try:
        return store.write(load, topic="tests")
    except ExportError:
        raise
    except Exception as err:  # DuckDB's reason for a file it could not read
        raise ExportError(f"{src}: {' '.join(str(err).split())[:300]}") from None


def _reader(cur, table: str, fmt: str, files: str, partitioned: bool) -> str:
    hive = ", hive_partitioning = true" if partitioned else ""
    if fmt == "parquet":
        return f"read_parquet({files}{hive})"
    if fmt == "csv":
        # (every column as text, cast by the INSERT to the table's own types)
        return f"read_csv({files}, header = true, all_varchar = true{hive})"
    types = cur.execute("SELECT column_name, data_type FROM duckdb_columns() "
                        "WHERE table_name = ? AND schema_name = 'main'", [table]).fetchall()
    if partitioned:
        types.append(("day", "VARCHAR"))
    columns = "{" + ", ".join(f"{literal(c)}: {literal(t)}" for c, t in types) + "}"
    return f"read_json({files}, format = 'newline_delimited', columns = {columns}{hive})"


def directory_size(path: Path) -> int:
    """Bytes of the files under ``path``."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
