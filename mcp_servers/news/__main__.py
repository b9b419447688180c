from mcp_servers.news.server import main

if __name__ == "__main__":
    main()
