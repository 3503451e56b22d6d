"""The ingest ceiling: an ASGI app that reads the request body and answers 200, nothing else.

Served by uvicorn with the same options as OpsPulse (`uvicorn bare_asgi:app --app-dir bench`)
and hit by the same generator, it shows what the server, the loopback and the generator
cost on their own.
"""

from support.asgi import accept, lifespan, read_body


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
    elif scope["type"] == "http" and await read_body(receive, keep=False) is not None:
        await accept(send)
