"""A reusable HTTP fuzz: random raw requests against every route of the bridge's router.

`fuzz_requests(routes, count, seed, ...)` yields raw request bytes (methods, paths,
headers and bodies, valid and not, with and without credentials); `send` sends one
over its own loopback connection and reads the answer. The fast test runs a few
thousand; a soak can run as many as it likes with other seeds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import json
import random
import socket

from aiohttp import web

METHODS = ("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH")
BAD_METHODS = ("G\x01T", "FOO", "GE T", "\xffGET", "get", "")

#: Fragments that break decoding or parsing: invalid UTF-8, a lone surrogate, controls.
NASTY_TEXT: tuple[bytes, ...] = (
    b"\xff",
    b"\xed\xa0\x80",  # a lone surrogate, UTF-8 encoded
    b"\xc3\x28",
    b"\x00",
    b"\x01",
    b"\x7f",
    b"\r",
    b"\xe2\x82",
    "é".encode(),
    "🚪".encode(),
    b"%ff",
    b"%ed%a0%80",
    b"%00",
    b"..",
    b"../..",
    b"A" * 300,
)

PARAM_VALUES: tuple[str, ...] = (
    "front_door",
    "back_yard",
    "x",
    "",
    "..",
    "%2e%2e",
    "%ff",
    "%ed%a0%80",
    "a" * 200,
    "0",
    "-1",
    "🚪",
)

QUERY_KEYS = ("camera", "since", "until", "reason", "limit", "offset", "x")
QUERY_VALUES = (
    "front_door",
    "2026-01-01T00:00:00+00:00",
    "2026-01-01T00:00:00",
    "motion",
    "ring",
    "10",
    "-5",
    "99999999999999999999",
    "NaN",
    "%ff",
    "%ed%a0%80",
    "",
)


@dataclass(frozen=True)
class Route:
    """One method and path template of the router (``/api/clips/{clip_id}``)."""

    method: str
    path: str


def app_routes(app: web.Application) -> list[Route]:
    """Every route the application's router knows, as (method, canonical path)."""
    found = []
    for route in app.router.routes():
        resource = route.resource
        if resource is None:
            continue
        found.append(Route(route.method, resource.canonical))
    return found


@dataclass
class FuzzTarget:
    """What the generator needs to know: routes and credentials (good and bad)."""

    routes: list[Route]
    api_token: str
    other_tokens: tuple[str, ...] = ()
    share_tokens: tuple[str, ...] = ()
    cameras: tuple[str, ...] = ("front_door",)
    clip_ids: tuple[str, ...] = ()
    share_ids: tuple[str, ...] = ()


def _fill(template: str, target: FuzzTarget, rng: random.Random, hostile: bool) -> bytes:
    """The path with each ``{param}`` replaced by a plausible, odd or hostile value."""
    out = template
    while "{" in out:
        start = out.index("{")
        end = out.index("}", start)
        name = out[start + 1 : end]
        pool: list[str] = list(PARAM_VALUES) if hostile else ["x", "front_door", "0"]
        if name == "camera":
            pool += list(target.cameras) * 3
        elif name == "clip_id":
            pool += list(target.clip_ids) * 3
        elif name == "share_id":
            pool += list(target.share_ids) * 3
        elif name == "token":
            pool += list(target.share_tokens) * 3
        out = out[:start] + rng.choice(pool) + out[end + 1 :]
    path = out.encode()
    if hostile and rng.random() < 0.2:
        # Raw bytes spliced into the path.
        cut = rng.randrange(len(path) + 1)
        path = path[:cut] + rng.choice(NASTY_TEXT) + path[cut:]
    if rng.random() < 0.3:
        pairs = [
            f"{rng.choice(QUERY_KEYS)}={rng.choice(QUERY_VALUES)}".encode()
            for _ in range(rng.randint(1, 4))
        ]
        path += b"?" + b"&".join(pairs)
    if hostile and rng.random() < 0.1:
        path = rng.choice([b"*", b"", b"http://evil.example/api/info", b"//api//info", b"/%"])
    return path


def _authorization(target: FuzzTarget, rng: random.Random, hostile: bool) -> bytes | None:
    token = target.api_token.encode()
    choice = rng.randrange(12 if hostile else 7)
    if choice < 3:
        return None
    if choice < 6:
        return b"Bearer " + token
    if choice == 6 and target.other_tokens:
        return b"Bearer " + rng.choice(target.other_tokens).encode()
    garbled = [
        b"Bearer \xff",
        b"Bearer " + token + rng.choice(NASTY_TEXT),
        b"Bearer " + token[:-3] + b"\xed\xa0\x80",
        b"bearer  " + token,
        b"Basic " + token,
        b"Bearer",
        b"Bearer " + b"\xff" * 40,
        token,
    ]
    return rng.choice(garbled)


def _documents(route: str, target: FuzzTarget, rng: random.Random) -> list[object]:
    """JSON bodies for `route`: mostly the ones it expects, with wrong shapes mixed in."""
    now = datetime.now(UTC)
    share_request = {
        "requester": "fuzz",
        "cameras": list(target.cameras),
        "start": (now - timedelta(minutes=rng.randint(1, 600))).isoformat(),
        "end": now.isoformat(),
        "reason": "fuzz",
    }
    decision = {
        "decision": rng.choice(["approve", "deny", "revoke", "x"]),
        "by": "u",
        "via": rng.choice(["ui", "phone", "automation", "x"]),
    }
    audit = {"kind": rng.choice(["notification", "decision_refused", "x"]), "to": ["a"], "n": 1}
    odd: list[object] = [
        {"kind": "notification", "self": 1},
        {"kind": "notification", "n": float("nan")},
        {"requester": "\udcff", "cameras": ["front_door"]},
        {"duration": rng.choice([1, 0, -1, 1e308, "x", None])},
        [],
        None,
        "text",
    ]
    expected: list[object] = [{"duration": rng.choice([1, 2])}]
    if route.endswith("share-requests"):
        expected = [share_request]
    elif route.endswith("decision"):
        expected = [decision]
    elif route.endswith("audit"):
        expected = [audit]
    return expected * len(odd) + odd


def _body(route: str, rng: random.Random, target: FuzzTarget, hostile: bool) -> bytes:
    choice = rng.randrange(10 if hostile else 7)
    if choice < 2:
        return b""
    if choice < 7:
        document = rng.choice(_documents(route, target, rng))
        return json.dumps(document).encode("utf-8", "surrogatepass")
    if choice == 7:
        return b"[" * rng.choice([10, 5000, 60_000])
    if choice == 8:
        return b'{"requester": "' + rng.choice(NASTY_TEXT) + b'", "cameras": []}'
    return rng.randbytes(rng.randint(1, 300))


def _headers(rng: random.Random, target: FuzzTarget, body: bytes, hostile: bool) -> list[bytes]:
    lines = [b"Host: 127.0.0.1"]
    if (authorization := _authorization(target, rng, hostile)) is not None:
        lines.append(b"Authorization: " + authorization)
    extras = {
        b"User-Agent": [b"fuzz/1.0", b"\xff\xfe", b"\xed\xa0\x80", "é".encode(), b"a" * 1000],
        b"Range": [
            b"bytes=0-10",
            b"bytes=\xff-",
            b"bytes=-",
            b"bytes=5-1",
            b"pages=1",
            b"\xed\xa0\x80",
        ],
        b"X-Doorstep-Client-Address": [b"192.0.2.1", b"\xff", b"\xed\xa0\x80"],
        b"X-Doorstep-Client-Agent": [b"phone", b"\xff", b"\xed\xa0\x80"],
        b"Content-Type": [b"application/json", b"text/plain", b"application/json; charset=\xff"],
        b"If-Modified-Since": [b"yesterday", b"\xff"],
        b"Accept-Encoding": [b"gzip", b"\xff"],
        b"Cookie": [b"a=\xff"],
    }
    for name, values in extras.items():
        if rng.random() < 0.3:
            # Clean requests take the first (valid) value of each header.
            lines.append(name + b": " + (rng.choice(values) if hostile else values[0]))
    if hostile and rng.random() < 0.1:
        # A header line the parser must refuse, carrying the token.
        lines.append(
            rng.choice([b"Authorization Bearer ", b"X\x01Y: ", b": "]) + target.api_token.encode()
        )
    lines.append(b"Content-Length: " + str(len(body)).encode())
    lines.append(b"Connection: close")
    rng.shuffle(lines)
    return lines


def fuzz_requests(target: FuzzTarget, count: int, seed: int) -> Iterator[bytes]:
    """`count` raw HTTP requests drawn from `seed` (the same seed gives the same requests)."""
    rng = random.Random(seed)
    for _ in range(count):
        # Half the requests are well formed, so that every handler is reached.
        hostile = rng.random() < 0.5
        route = rng.choice(target.routes)
        method = route.method if not hostile or rng.random() < 0.7 else rng.choice(METHODS)
        if method == "*" or (hostile and rng.random() < 0.05):
            method = rng.choice(METHODS + BAD_METHODS)
        path = _fill(route.path, target, rng, hostile)
        with_body = method not in {"GET", "HEAD"} or (hostile and rng.random() < 0.1)
        body = _body(route.path, rng, target, hostile) if with_body else b""
        version = b"HTTP/1.1"
        if hostile and rng.random() < 0.05:
            version = rng.choice([b"HTTP/1.0", b"HTTP/9.9", b"HTTX"])
        head = method.encode("utf-8", "surrogateescape") + b" " + path + b" " + version
        lines = [head, *_headers(rng, target, body, hostile)]
        yield b"\r\n".join(lines) + b"\r\n\r\n" + body


@dataclass
class Answer:
    """Status and body of one answer (status 0: the connection closed with no answer)."""

    status: int
    headers: dict[str, str]
    body: bytes


#: An answer that never ends by design (the live MJPEG view): read up to its head only.
ENDLESS = b"multipart/x-mixed-replace"


def send(host: str, port: int, request: bytes, timeout: float = 30.0) -> Answer:
    """Send one raw request on its own connection and read the answer until the server closes.

    A live stream (`ENDLESS`) is read up to the end of its head: its body has no end.
    """
    with socket.create_connection((host, port), timeout=timeout) as sock:
        # The server may close early on a request it refuses; read what it said.
        with contextlib.suppress(OSError):
            sock.sendall(request)
        chunks = []
        head_read = False
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
                if not head_read:
                    head, head_read_now, _ = b"".join(chunks).partition(b"\r\n\r\n")
                    head_read = bool(head_read_now)
                    if head_read and ENDLESS in head.lower():
                        break
        except ConnectionResetError:
            pass
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    try:
        status = int(lines[0].split(b" ")[1])
    except (IndexError, ValueError):
        return Answer(0, {}, raw)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = _unchunk(body)
    return Answer(status, headers, body)


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return out


@dataclass
class FuzzReport:
    """What a fuzz run saw: counts by status and the requests that need a look."""

    sent: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    server_errors: list[tuple[bytes, Answer]] = field(default_factory=list)
    not_json: list[tuple[bytes, Answer]] = field(default_factory=list)
    no_answer: list[bytes] = field(default_factory=list)


def run_fuzz(
    host: str, port: int, requests: Iterable[bytes], learn: FuzzTarget | None = None
) -> FuzzReport:
    """Send every request; collect 5xx answers, error answers that are not JSON, silences.

    With `learn`, the ids of shares the fuzz creates are added to its share ids, so
    that later requests (drawn lazily) decide, audit and read real shares.
    """
    report = FuzzReport()
    for request in requests:
        answer = send(host, port, request)
        if learn is not None and answer.status == 201:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                learn.share_ids = (*learn.share_ids, str(json.loads(answer.body)["id"]))
        report.sent += 1
        report.statuses[answer.status] = report.statuses.get(answer.status, 0) + 1
        if answer.status == 0:
            report.no_answer.append(request)
        elif answer.status >= 500:
            report.server_errors.append((request, answer))
        elif answer.status >= 400 and not request.startswith(b"HEAD "):
            try:
                error = json.loads(answer.body)["error"]
            except (ValueError, KeyError, TypeError):
                report.not_json.append((request, answer))
            else:
                if not isinstance(error, str) or len(error) > 300:
                    report.not_json.append((request, answer))
    return report
