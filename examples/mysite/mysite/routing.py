"""Channels' ASGI application (``MYSITE_ASGI=channels`` names it in ASGI_APPLICATION): Django
for HTTP, the diagnostics echo consumer for WebSockets at ``/ws/echo/``."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
django_asgi = get_asgi_application()  # before the consumers import models

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from diagnostics.consumers import EchoConsumer  # noqa: E402
from django.urls import path  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi,
        "websocket": URLRouter([path("ws/echo/", EchoConsumer.as_asgi())]),
    }
)
