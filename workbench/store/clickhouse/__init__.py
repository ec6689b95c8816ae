"""ClickHouse as the store, for a team past one machine (``clickhouse://``, ``chdb://``).

Telemetry lives in the OpenTelemetry Collector ClickHouse exporter's own tables, so a
fleet of stock Collectors writes what the workbench reads; see :mod:`.otel_ddl`.
"""

from .connect import is_clickhouse_url

__all__ = ["is_clickhouse_url"]
