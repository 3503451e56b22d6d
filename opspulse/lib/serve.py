"""The command line that serves OpsPulse's web processes (uvicorn), in one place.

Dashboard frames are small once a store is on screen (one feed row and the changed
KPIs per new order), so sockets are served without permessage-deflate: a compressor
per socket costs about 46 KiB of memory and a zlib pass per frame, which at thousands
of open dashboards outweighs the bytes it saves (bench/README.md, connections).
"""

from __future__ import annotations

import sys


def uvicorn_command(*, host: str, port: int, workers: int = 1, app: str = "config.asgi:application",
                    log_level: str = "warning") -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", app,
        "--host", host, "--port", str(port), "--workers", str(workers),
        "--ws-per-message-deflate", "false",
        "--log-level", log_level,
    ]
