"""Test selection: which tests to run for a change, in what order, with the reasons — and
how well that order would have caught the failures of the project's own history."""
