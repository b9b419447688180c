"""The wallet MCP server: an agent's USDC wallet on the sandbox chain (specs/mcp/wallet.md)."""
