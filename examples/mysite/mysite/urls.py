from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("catalog.urls")),
    path("diag/", include("diagnostics.urls")),
    path("admin/", admin.site.urls),
]
