from django.urls import path

from . import views

app_name = "diagnostics"
urlpatterns = [
    path("echo/", views.echo, name="echo"),
    path("stream/", views.stream, name="stream"),
    path("big/", views.big, name="big"),
    path("slow/", views.slow, name="slow"),
    path("redirect/", views.redirect, name="redirect"),
    path("fail/", views.fail, name="fail"),
    path("queries/", views.queries, name="queries"),
    path("pid/", views.pid, name="pid"),
    path("version/", views.version, name="version"),
    path("page/", views.page, name="page"),
    path("async/", views.async_version, name="async"),
    path("ticks/", views.ticks, name="ticks"),
    path("path/", views.path_view, name="path"),
    path("path/<path:rest>", views.path_view, name="path-rest"),
]
