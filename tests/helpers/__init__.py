"""Modules the tests (and scripts/record_histories.py) import: loopback fakes of remote services, MCP hosts
and servers for tests, media files, a shared persona, and polling."""
