"""Run gcp-storage-emulator in memory on 127.0.0.1:PORT until killed.

The emulator re-serialises all metadata to disk on every write (5,000 uploads
take minutes); with that no-op'd it is fast (shared/SERVERS.md).
"""

import sys
import threading

from gcp_storage_emulator import storage
from gcp_storage_emulator.server import create_server

storage.Storage._write_config_to_file = lambda self: None


def main() -> None:
    port = int(sys.argv[1])
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    print(f"gcs emulator on {port}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
