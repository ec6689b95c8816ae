"""Workflows: specs, their compilation to LangGraph, runs and their checkpoints."""
