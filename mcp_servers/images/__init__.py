"""The images MCP server (Ideogram-style generation into the local media store); run it with
`python -m mcp_servers.images`."""
