"""Small FastCGI, SCGI and AJP13 clients, to talk to the server directly on its socket.

They are deliberately independent of flup and of ``fcgi`` (written from the protocol specs), so
they check the server against the protocol, not against itself.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

Address = str | tuple[str, int]

FCGI_BEGIN_REQUEST, FCGI_ABORT_REQUEST, FCGI_END_REQUEST = 1, 2, 3
FCGI_PARAMS, FCGI_STDIN, FCGI_STDOUT, FCGI_STDERR = 4, 5, 6, 7
FCGI_GET_VALUES, FCGI_GET_VALUES_RESULT, FCGI_UNKNOWN_TYPE = 9, 10, 11
FCGI_KEEP_CONN = 1


def connect(address: Address, timeout: float = 10.0) -> socket.socket:
    if isinstance(address, str):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(address)
    return sock


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError(f"connection closed after {len(data)} of {size} bytes")
        data += chunk
    return data


def reset(sock: socket.socket) -> None:
    """Close with a RST (SO_LINGER 0), like a client that aborts."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def parse_cgi_response(data: bytes) -> Response:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise AssertionError(f"no header/body separator in {data[:200]!r}")
    headers: dict[str, str] = {}
    status = 200
    for line in head.split(b"\r\n"):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "status":
            status = int(value.strip().split()[0])
        else:
            headers[name.strip().lower()] = value.strip()
    return Response(status, headers, body)


# -- FastCGI ------------------------------------------------------------------------------------
def fcgi_record(rtype: int, request_id: int, content: bytes = b"", version: int = 1) -> bytes:
    pad = -len(content) & 7
    return (
        struct.pack("!BBHHBx", version, rtype, request_id, len(content), pad)
        + content
        + b"\0" * pad
    )


def fcgi_pair(name: bytes, value: bytes) -> bytes:
    def length(n: int) -> bytes:
        return bytes([n]) if n < 128 else struct.pack("!L", n | 0x80000000)

    return length(len(name)) + length(len(value)) + name + value


def fcgi_stream(rtype: int, request_id: int, data: bytes) -> bytes:
    out = b"".join(
        fcgi_record(rtype, request_id, data[i : i + 65535]) for i in range(0, len(data), 65535)
    )
    return out + fcgi_record(rtype, request_id)


def base_params(path: str = "/", method: str = "GET", query: str = "", body: bytes = b"") -> dict:
    return {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "REQUEST_URI": path + ("?" + query if query else ""),
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_LENGTH": str(len(body)) if body else "",
        "HTTP_HOST": "127.0.0.1",
    }


def fcgi_request_bytes(
    params: Mapping[str, str | bytes], body: bytes = b"", request_id: int = 1, flags: int = 0
) -> bytes:
    encoded = b"".join(
        fcgi_pair(k.encode("latin-1"), v if isinstance(v, bytes) else v.encode("latin-1"))
        for k, v in params.items()
    )
    return (
        fcgi_record(FCGI_BEGIN_REQUEST, request_id, struct.pack("!HB5x", 1, flags))
        + fcgi_stream(FCGI_PARAMS, request_id, encoded)
        + fcgi_stream(FCGI_STDIN, request_id, body)
    )


def fcgi_read_record(sock: socket.socket) -> tuple[int, int, bytes]:
    _version, rtype, rid, clen, plen = struct.unpack("!BBHHBx", recv_exactly(sock, 8))
    content = recv_exactly(sock, clen)
    recv_exactly(sock, plen)
    return rtype, rid, content


def fcgi_read_response(sock: socket.socket) -> Response:
    stdout, stderr = [], []
    while True:
        rtype, _, content = fcgi_read_record(sock)
        if rtype == FCGI_STDOUT:
            stdout.append(content)
        elif rtype == FCGI_STDERR:
            stderr.append(content)
        elif rtype == FCGI_END_REQUEST:
            app_status, protocol_status = struct.unpack("!LB3x", content)
            break
    response = parse_cgi_response(b"".join(stdout))
    response.extra.update(
        stderr=b"".join(stderr), app_status=app_status, protocol_status=protocol_status
    )
    return response


def fcgi_get(
    address: Address,
    path: str = "/",
    *,
    method: str = "GET",
    query: str = "",
    body: bytes = b"",
    params: Mapping[str, str | bytes] | None = None,
    timeout: float = 10.0,
) -> Response:
    all_params: dict[str, str | bytes] = base_params(path, method, query, body)
    all_params.update(params or {})
    with connect(address, timeout) as sock:
        sock.sendall(fcgi_request_bytes(all_params, body))
        return fcgi_read_response(sock)


def fcgi_get_values(address: Address, names: Iterable[str]) -> dict[str, str]:
    content = b"".join(fcgi_pair(n.encode(), b"") for n in names)
    with connect(address) as sock:
        sock.sendall(fcgi_record(FCGI_GET_VALUES, 0, content))
        rtype, _, data = fcgi_read_record(sock)
    assert rtype == FCGI_GET_VALUES_RESULT, rtype
    values, pos = {}, 0
    while pos < len(data):
        lengths = []
        for _ in range(2):
            if data[pos] & 0x80:
                lengths.append(struct.unpack("!L", data[pos : pos + 4])[0] & 0x7FFFFFFF)
                pos += 4
            else:
                lengths.append(data[pos])
                pos += 1
        name = data[pos : pos + lengths[0]].decode()
        values[name] = data[pos + lengths[0] : pos + lengths[0] + lengths[1]].decode()
        pos += lengths[0] + lengths[1]
    return values


# -- SCGI ---------------------------------------------------------------------------------------
def scgi_request_bytes(params: Mapping[str, str], body: bytes = b"") -> bytes:
    items = {"CONTENT_LENGTH": str(len(body)), "SCGI": "1"}
    items.update({k: v for k, v in params.items() if k != "CONTENT_LENGTH"})
    headers = b"".join(
        k.encode("latin-1") + b"\0" + v.encode("latin-1") + b"\0" for k, v in items.items()
    )
    return str(len(headers)).encode() + b":" + headers + b"," + body


def scgi_get(
    address: Address,
    path: str = "/",
    *,
    method: str = "GET",
    query: str = "",
    body: bytes = b"",
    params: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> Response:
    all_params = base_params(path, method, query, body)
    all_params.update(params or {})
    with connect(address, timeout) as sock:
        sock.sendall(scgi_request_bytes(all_params, body))
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return parse_cgi_response(b"".join(chunks))


# -- AJP13 --------------------------------------------------------------------------------------
_AJP_METHODS = {"GET": 2, "HEAD": 3, "POST": 4, "PUT": 5, "DELETE": 6}


def _ajp_string(value: str | bytes) -> bytes:
    data = value if isinstance(value, bytes) else value.encode("latin-1")
    return struct.pack(">H", len(data)) + data + b"\0"


def ajp_forward_request(
    method: str, uri: str, headers: Mapping[str, str], query: str = "", port: int = 80
) -> bytes:
    data = bytes([2, _AJP_METHODS[method]])
    data += _ajp_string("HTTP/1.1") + _ajp_string(uri) + _ajp_string("127.0.0.1")
    data += _ajp_string("localhost") + _ajp_string("127.0.0.1")
    data += struct.pack(">H", port) + b"\0"
    data += struct.pack(">H", len(headers))
    for name, value in headers.items():
        data += _ajp_string(name) + _ajp_string(value)
    if query:
        data += b"\x05" + _ajp_string(query)
    data += b"\xff"
    return b"\x12\x34" + struct.pack(">H", len(data)) + data


def _ajp_body_packet(chunk: bytes) -> bytes:
    data = struct.pack(">H", len(chunk)) + chunk if chunk else b""
    return b"\x12\x34" + struct.pack(">H", len(data)) + data


def _ajp_read_string(data: bytes, pos: int) -> tuple[bytes, int]:
    (length,) = struct.unpack(">H", data[pos : pos + 2])
    return data[pos + 2 : pos + 2 + length], pos + 3 + length


_AJP_RESPONSE_HEADERS = [
    None, "content-type", "content-language", "content-length", "date", "last-modified",
    "location", "set-cookie", "set-cookie2", "servlet-engine", "status", "www-authenticate",
]  # fmt: skip


def ajp_get(
    address: Address,
    uri: str = "/",
    *,
    method: str = "GET",
    query: str = "",
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    sock: socket.socket | None = None,
    timeout: float = 10.0,
) -> Response:
    """One AJP13 request; pass ``sock`` to reuse a persistent connection."""
    all_headers = {"Host": "127.0.0.1"}
    if body:
        all_headers["Content-Length"] = str(len(body))
    all_headers.update(headers or {})
    own = sock is None
    conn = connect(address, timeout) if sock is None else sock
    try:
        conn.sendall(ajp_forward_request(method, uri, all_headers, query))
        pending = body
        if pending:
            conn.sendall(_ajp_body_packet(pending[:8186]))
            pending = pending[8186:]
        status, response_headers, parts = 0, {}, []
        while True:
            prefix, length = struct.unpack(">2sH", recv_exactly(conn, 4))
            assert prefix == b"AB", prefix
            data = recv_exactly(conn, length)
            kind = data[0]
            if kind == 4:  # SEND_HEADERS
                (status,) = struct.unpack(">H", data[1:3])
                _, pos = _ajp_read_string(data, 3)
                (count,) = struct.unpack(">H", data[pos : pos + 2])
                pos += 2
                for _ in range(count):
                    if data[pos] == 0xA0:
                        name = _AJP_RESPONSE_HEADERS[data[pos + 1]] or "?"
                        pos += 2
                    else:
                        raw, pos = _ajp_read_string(data, pos)
                        name = raw.decode("latin-1").lower()
                    value, pos = _ajp_read_string(data, pos)
                    response_headers[name] = value.decode("latin-1")
            elif kind == 3:  # SEND_BODY_CHUNK
                (size,) = struct.unpack(">H", data[1:3])
                parts.append(data[3 : 3 + size])
            elif kind == 6:  # GET_BODY_CHUNK
                (size,) = struct.unpack(">H", data[1:3])
                size = min(size, 8186)  # a web server's packets are at most 8 KB
                conn.sendall(_ajp_body_packet(pending[:size]))
                pending = pending[size:]
            elif kind == 5:  # END_RESPONSE
                break
        return Response(status, response_headers, b"".join(parts))
    finally:
        if own:
            conn.close()
