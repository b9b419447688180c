"""The news MCP server (headlines and trending topics); run it with `python -m mcp_servers.news`."""
