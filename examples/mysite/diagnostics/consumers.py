"""A Channels consumer for the ASGI tests and benchmark: echoes each text message, prefixed with
the version and the serving process' id, and says hello in the same form when it connects."""

import os

from channels.generic.websocket import AsyncWebsocketConsumer

from . import version as version_module


class EchoConsumer(AsyncWebsocketConsumer):
    def prefix(self) -> str:
        return f"{version_module.VERSION} {os.getpid()}"

    async def connect(self):
        await self.accept()
        await self.send(text_data=f"hello {self.prefix()}")

    async def receive(self, text_data=None, bytes_data=None):
        if self.channel_layer is not None:  # the in-memory layer: a round trip through it
            await self.channel_layer.send(self.channel_name, {"type": "echo", "text": text_data})
        else:
            await self.echo({"text": text_data})

    async def echo(self, event):
        await self.send(text_data=f"{self.prefix()} {event['text']}")
