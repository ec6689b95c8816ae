"""Consoles: terminals on pseudo-terminals (project shells, agents run on a PTY), the
clients attached to them, shell recordings and history."""
