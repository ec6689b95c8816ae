"""Panel components that render a model. No SQL here."""
