"""The projects on a machine: found by :func:`.scan.scan`, stored, and linked to the runs,
coverage reports and agents that name them."""
