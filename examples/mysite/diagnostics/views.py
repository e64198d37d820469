"""Endpoints the test suite and the benchmarks exercise through every server.

They stay small and honest: each one does what a real page does (read a body, stream, redirect,
fail) so that a server is measured and tested on the same things a Django site asks of it.
"""

import hashlib
import json
import os
import secrets
import time

from django.http import HttpResponse, HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from . import version as version_module

_MB = 1024 * 1024


def _megabytes(request, default):
    try:
        return max(0.0, min(float(request.GET.get("mb", default)), 64.0))
    except ValueError:
        return float(default)


@csrf_exempt
def echo(request):
    """Describe the request: method, paths, body size and digest, and the X- headers."""
    body = request.body
    headers = {k: v for k, v in request.headers.items() if k.lower().startswith("x-")}
    return JsonResponse(
        {
            "method": request.method,
            "path": request.path,
            "path_info": request.path_info,
            "script_name": request.META.get("SCRIPT_NAME", ""),
            "query": request.GET.dict(),
            "body_length": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "headers": headers,
            "echo_url": reverse("diagnostics:echo"),
        },
        json_dumps_params={"ensure_ascii": False},
    )


def stream(request):
    """Stream ``mb`` megabytes (default 10) in 64 KB chunks."""
    total = int(_megabytes(request, 10) * _MB)
    chunk = b"x" * 65536

    def chunks():
        sent = 0
        while sent < total:
            piece = chunk[: total - sent]
            sent += len(piece)
            yield piece

    response = StreamingHttpResponse(chunks(), content_type="application/octet-stream")
    response["X-Accel-Buffering"] = "no"
    return response


def big(request):
    """Answer ``mb`` megabytes (default 10) as one single-chunk response."""
    return HttpResponse(
        b"y" * int(_megabytes(request, 10) * _MB), content_type="application/octet-stream"
    )


def slow(request):
    """Sleep ``s`` seconds (default 1, at most 30), then answer."""
    try:
        seconds = max(0.0, min(float(request.GET.get("s", "1")), 30.0))
    except ValueError:
        seconds = 1.0
    time.sleep(seconds)
    return HttpResponse(f"slept {seconds}\n", content_type="text/plain")


def redirect(request):
    return HttpResponseRedirect(reverse("catalog:index"))


def queries(request):
    """An N+1 on purpose: one count of the categories, then the same lookup once per id asked
    for (``?n=5``: 6 queries, 4 of them duplicates); ``?big=1`` adds one with a long value."""
    from catalog.models import Category, Product

    n = max(0, min(int(request.GET.get("n", 3)), 100))
    found = [Category.objects.count()]
    found += [Product.objects.filter(pk=i).exists() for i in range(n)]
    if request.GET.get("big"):
        found.append(Product.objects.filter(name="x" * 500).exists())
    return HttpResponse(f"{len(found)} queries\n", content_type="text/plain")


def fail(request):
    raise RuntimeError("diagnostics: this view fails on purpose")


def path_view(request, rest=""):
    """Show how the server split the URL (for prefix and non-ASCII path checks)."""
    return HttpResponse(
        json.dumps(
            {"path": request.path, "path_info": request.path_info, "rest": rest},
            ensure_ascii=False,
        ),
        content_type="application/json; charset=utf-8",
    )


def version(request):
    """The value of diagnostics.version.VERSION: the reload benchmark rewrites that module."""
    return HttpResponse(str(version_module.VERSION), content_type="text/plain")


def pid(request):
    """The serving process' id: lets tests see whether a server was restarted."""
    import os

    return HttpResponse(str(os.getpid()), content_type="text/plain")


PAGE_HEADING = "A page"


def page(request):
    """An HTML page that links the site's stylesheet and script, for the live-reload tests and
    benchmark. ``?csp=1`` sends a strict Content-Security-Policy with a fresh nonce, as Django
    6's CSP middleware and django-csp do."""
    nonce = secrets.token_urlsafe(16) if request.GET.get("csp") else None
    context = {"heading": PAGE_HEADING, "pid": os.getpid(), "nonce": nonce}
    response = render(request, "diagnostics/page.html", context)
    if nonce:
        response["Content-Security-Policy"] = (
            f"default-src 'self'; script-src 'nonce-{nonce}'; style-src 'self'"
        )
    return response


async def async_version(request):
    """An async view: the version and the serving process' id (the ASGI tests and benchmark)."""
    return HttpResponse(f"{version_module.VERSION} {os.getpid()}", content_type="text/plain")


async def ticks(request):
    """An endless event stream (async), a tick every 0.2 s: what a restart must not wait for."""
    import asyncio

    async def stream():
        n = 0
        while True:
            n += 1
            yield f"data: tick {n} {os.getpid()}\n\n"
            await asyncio.sleep(0.2)

    return StreamingHttpResponse(stream(), content_type="text/event-stream")
