from mcp_servers.social.server import main

if __name__ == "__main__":
    main("twitter")
