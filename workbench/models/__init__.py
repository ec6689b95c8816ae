"""param models shared by notebooks and dashboards. No Panel, no layout, no SQL."""

from .telemetry import AgentTelemetry
from .tests import TestAnalytics

__all__ = ["AgentTelemetry", "TestAnalytics"]
