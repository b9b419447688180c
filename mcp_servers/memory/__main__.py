from mcp_servers.memory.server import main

if __name__ == "__main__":
    main()
