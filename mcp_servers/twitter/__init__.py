"""The Twitter (X) MCP server, sandbox or live (CHIMERA_TWITTER_BACKEND): `python -m mcp_servers.twitter`."""
