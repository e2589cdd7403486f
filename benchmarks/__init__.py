"""Benchmarks for sendgrid-ipam; run them as modules from the project root (see README.md)."""
