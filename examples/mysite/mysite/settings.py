"""Settings of the example project.

SQLite by default. ``MYSITE_DB`` picks another database for the tests and benchmarks:
``postgresql`` (127.0.0.1:5432, user postgres) or ``mysql`` (127.0.0.1:3306, user root).
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("MYSITE_SECRET_KEY", "django-insecure-example-only-never-deploy-this")
DEBUG = os.environ.get("MYSITE_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", "testserver"]

INSTALLED_APPS = [
    # devserver before django.contrib.staticfiles, so its runserver wins.
    "devserver",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "catalog",
    "diagnostics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Which runserver `manage.py runserver` runs; the benchmarks compare them in one project:
# devserver's (the default), Django's own ("django"), Django's with django-watchfiles, or
# Django's with django-browser-reload ("browser-reload", the live-reload benchmark's peer).
_RUNSERVER = os.environ.get("MYSITE_RUNSERVER", "devserver")
if _RUNSERVER != "devserver":
    INSTALLED_APPS.remove("devserver")
if _RUNSERVER == "watchfiles":
    INSTALLED_APPS.insert(0, "django_watchfiles")
if _RUNSERVER == "browser-reload":
    INSTALLED_APPS.append("django_browser_reload")
    MIDDLEWARE.append("django_browser_reload.middleware.BrowserReloadMiddleware")

# ASGI: MYSITE_ASGI=channels serves Channels' router (HTTP and a WebSocket echo consumer, with
# the in-memory channel layer); runserver then serves ASGI by itself, as Daphne's does.
# `runserver --asgi` without it serves mysite/asgi.py's Django application.
if os.environ.get("MYSITE_ASGI") == "channels":
    ASGI_APPLICATION = "mysite.routing.application"
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
elif os.environ.get("MYSITE_ASGI") == "lifespan":  # an app with a lifespan (mysite/lifespan.py)
    ASGI_APPLICATION = "mysite.lifespan.application"
if _RUNSERVER == "daphne":  # Daphne's runserver, for the ASGI benchmark
    INSTALLED_APPS.insert(0, "daphne")

ROOT_URLCONF = "mysite.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "mysite.wsgi.application"

_DATABASES = {
    "sqlite": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("MYSITE_DB_NAME", str(BASE_DIR / "db.sqlite3")),
    },
    "postgresql": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("MYSITE_DB_NAME", "mysite"),
        "USER": os.environ.get("MYSITE_DB_USER", "postgres"),
        "HOST": "127.0.0.1",
        "PORT": "5432",
    },
    "mysql": {
        "ENGINE": "django.db.backends.mysql",
        "NAME": os.environ.get("MYSITE_DB_NAME", "mysite"),
        "USER": os.environ.get("MYSITE_DB_USER", "root"),
        "HOST": "127.0.0.1",
        "PORT": "3306",
        "OPTIONS": {"charset": "utf8mb4"},
    },
}
DATABASES = {"default": _DATABASES[os.environ.get("MYSITE_DB", "sqlite")]}
if "MYSITE_TEST_DB_NAME" in os.environ:
    DATABASES["default"]["TEST"] = {"NAME": os.environ["MYSITE_TEST_DB_NAME"]}

# Where loaddata and testserver also look for fixtures (the tests and benchmarks use it).
FIXTURE_DIRS = [d for d in os.environ.get("MYSITE_FIXTURE_DIRS", "").split(os.pathsep) if d]

AUTH_PASSWORD_VALIDATORS = []

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticroot"
MEDIA_URL = "media/"
MEDIA_ROOT = BASE_DIR / "media"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
