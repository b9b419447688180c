"""The sandbox Twitter MCP server; run it with `python -m mcp_servers.twitter` (stdio)."""
