"""Evaluation harness for MTEB / C-MTEB tasks (see docs/)."""

__version__ = "0.1.0"
