"""An ASGI application with a lifespan (``MYSITE_ASGI=lifespan``): Django for HTTP, and the
lifespan's startup and shutdown appended to the file ``MYSITE_LIFESPAN_LOG`` names, with the
process id, so the tests can see each worker run them."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
django_asgi = get_asgi_application()


def _note(event: str) -> None:
    with open(os.environ["MYSITE_LIFESPAN_LOG"], "a") as log:
        log.write(f"{event} {os.getpid()}\n")


async def application(scope, receive, send):
    if scope["type"] != "lifespan":
        return await django_asgi(scope, receive, send)
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            _note("startup")
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            _note("shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return
