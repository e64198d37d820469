from django.apps import apps
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("catalog.urls")),
    path("diag/", include("diagnostics.urls")),
    path("admin/", admin.site.urls),
]

if apps.is_installed("django_browser_reload"):  # MYSITE_RUNSERVER=browser-reload
    urlpatterns.append(path("__reload__/", include("django_browser_reload.urls")))
