"""The Instagram MCP server, sandbox or live (CHIMERA_INSTAGRAM_BACKEND): `python -m mcp_servers.instagram`."""
