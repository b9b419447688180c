import os

# One BLAS/OpenMP thread per server process: an embedding is one short sentence, and a thread pool per
# pooled session only fights the workers for the machine's cores (4x the CPU per call measured, issue 9).
os.environ.setdefault("OMP_NUM_THREADS", "1")

from mcp_servers.memory.server import main  # after the thread limit: numpy reads it on import

if __name__ == "__main__":
    main()
