"""A small WSGI app served by werkzeug on the socket the supervisor holds.

It imports ``appmod`` from its own directory (the tests edit that file), appends its PID to
``starts.log`` when it starts (the start counter the tests wait on), and answers
``"<appmod.VERSION> <pid>"``. ``/crash`` makes it die after it served.
"""

import os
import signal
import sys

import appmod
from werkzeug.serving import ThreadedWSGIServer

from reloader import worker


def app(environ, start_response):
    if environ["PATH_INFO"] == "/crash":
        os._exit(3)
    body = f"{appmod.VERSION} {os.getpid()}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


class DrainingServer(ThreadedWSGIServer):
    """Stop accepting, tell the supervisor, then let the requests in flight finish."""

    daemon_threads = False
    block_on_close = True

    stopped = False

    def server_close(self):
        # werkzeug calls this once while it sets up an inherited socket: not a stop.
        self.socket.close()
        if self.stopped:
            worker.stopping()
        super().server_close()


def main():
    with open("starts.log", "a") as f:
        f.write(f"{os.getpid()}\n")
    fds = worker.listen_fds()
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    server = DrainingServer(host, 0, app, fd=fds[0])

    def stop(signum, frame):
        # Stop between two requests, never between accept() and the request's thread.
        server.stopped = True
        server._BaseServer__shutdown_request = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker.ready()
    server.serve_forever(poll_interval=0.02)


if __name__ == "__main__":
    main()
