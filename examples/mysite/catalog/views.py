from django.shortcuts import get_object_or_404, render

from .models import Category, Product


def index(request):
    products = Product.objects.select_related("category")
    return render(
        request,
        "catalog/index.html",
        {"products": products, "categories": Category.objects.all()},
    )


def product(request, slug):
    return render(
        request,
        "catalog/product.html",
        {"product": get_object_or_404(Product.objects.select_related("category"), slug=slug)},
    )
