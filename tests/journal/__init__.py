"""Tests of sendgrid_ipam.journal: one suite over every backend (conftest.py), plus each
backend's own failure modes and a crash test with a real subprocess killed by SIGKILL."""
