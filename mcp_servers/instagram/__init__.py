"""The sandbox Instagram MCP server; run it with `python -m mcp_servers.instagram` (stdio)."""
