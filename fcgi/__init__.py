"""Any WSGI application over FastCGI, SCGI or AJP on flup (see the runfcgi issue)."""
