from mcp_servers.images.server import main

if __name__ == "__main__":
    main()
