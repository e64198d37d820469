from django.apps import AppConfig


class DevserverConfig(AppConfig):
    name = "devserver"
    verbose_name = "Development server"

    def __init__(self, app_name, app_module):
        super().__init__(app_name, app_module)
        # Created in the first phase of django.setup(), before any models module is imported:
        # the last moment to keep our runserver if a later phase fails (see fallback.py).
        from . import fallback

        fallback.install()

    def ready(self):
        from . import checks  # noqa: F401 - registers the checks
