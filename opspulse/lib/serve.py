"""The command line that serves OpsPulse's web processes (uvicorn), in one place.

Dashboard frames are small once a store is on screen (one feed row and the changed
KPIs per new order), so sockets are served without permessage-deflate: a compressor
per socket costs about 46 KiB of memory and a zlib pass per frame, which at thousands
of open dashboards outweighs the bytes it saves (bench/README.md, connections).

An idle keep-alive connection is kept 75 s (uvicorn's default is 5 s), like the
proxies and load balancers that sit in front of such servers. A sender that reuses its
connection just as the server closes it gets no answer: uvicorn's five seconds lost
one webhook of 18,000 on a short peak day, its sender's connection reset mid-request
(bench/README.md, "A connection closed as a webhook was sent").
"""

from __future__ import annotations

import sys


def uvicorn_command(*, host: str, port: int, workers: int = 1, app: str = "config.asgi:application",
                    log_level: str = "warning") -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", app,
        "--host", host, "--port", str(port), "--workers", str(workers),
        "--ws-per-message-deflate", "false",
        "--timeout-keep-alive", "75",
        "--log-level", log_level,
    ]
