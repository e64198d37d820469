from django.apps import AppConfig


class DevserverConfig(AppConfig):
    name = "devserver"
    verbose_name = "Development server"
