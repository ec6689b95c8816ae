"""A sample Happy Observatory plugin (see pyproject.toml for what it adds)."""
