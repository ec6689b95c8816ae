"""Pure functions over DataFrames and parsed results. No Panel, no database."""
