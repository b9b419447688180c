"""The memory MCP server (search and store long-term memories); run it with `python -m mcp_servers.memory`."""
