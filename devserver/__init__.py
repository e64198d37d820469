"""devserver: the Django app that provides runserver, testserver and runfcgi.

List it in INSTALLED_APPS before django.contrib.staticfiles. Importing this package does
nothing: the commands win by INSTALLED_APPS order.
"""
