"""param models shared by notebooks and dashboards. No Panel, no layout, no SQL."""

from .tests import TestAnalytics

__all__ = ["TestAnalytics"]
