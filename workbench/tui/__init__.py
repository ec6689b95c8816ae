"""`observatory tui`: the terminal UI."""
