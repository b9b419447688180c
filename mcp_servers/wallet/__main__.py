from mcp_servers.wallet.server import main

if __name__ == "__main__":
    main()
