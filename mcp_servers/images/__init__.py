"""The images MCP server (Ideogram-style generation into the local media store); run it with
`python -m mcp_servers.images`.

`service` holds the contract every generator keeps and what they share (rules, idempotency, media store,
usage); `sandbox` the local Pillow renderer; `ideogram` the live Ideogram 3.0 client; `server` exposes the
service, with the generator `config.backend_from_env` chooses, as an MCP server.
"""
