from django.urls import path

from . import views

app_name = "catalog"
urlpatterns = [
    path("", views.index, name="index"),
    path("products/<slug:slug>/", views.product, name="product"),
]
