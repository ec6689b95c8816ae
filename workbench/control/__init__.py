"""Agents and what acts on them: backends (one module each), the supervisor, approvals and
their policy, roles and the audit log. See DESIGN.md, "control/"."""
