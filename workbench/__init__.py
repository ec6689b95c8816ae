"""Happy Observatory: analytics workbench and control plane for agentic software development."""

__version__ = "0.1.0"
