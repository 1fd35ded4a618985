"""A small threaded HTTP server on 127.0.0.1 that records every call and injects faults.

Subclasses declare routes; every request is recorded (method, path, query, headers, body)
under a lock, whether it was answered normally or with an injected fault.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class RecordedCall:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    status: int = 0
    fault: bool = False
    at: float = 0.0  # time.time() when its request line and headers had arrived

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any = None  # dict/list → JSON; str → text; None → empty
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FaultPlan:
    """Answer a fraction of calls with 429 (with Retry-After) or 5xx, deterministically.

    `paths` limits faults to paths matching the regex; `seed` makes the sequence repeatable.
    """

    rate: float = 0.0
    statuses: tuple[int, ...] = (429, 500, 503)
    retry_after: str | None = "0"
    seed: int = 0
    paths: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"FaultPlan.rate must be within 0..1, got {self.rate}")
        self._rng = random.Random(self.seed)

    def pick(self, path: str) -> int | None:
        if self.paths and not re.search(self.paths, path):
            return None
        if self.rate and self._rng.random() < self.rate:
            return self._rng.choice(self.statuses)
        return None


Handler = Callable[[RecordedCall, re.Match], Reply]


class LoopbackServer:
    """Base class: call `route(method, pattern, handler)` in `setup_routes`."""

    name = "loopback"

    def __init__(self, *, faults: FaultPlan | None = None) -> None:
        self.faults = faults or FaultPlan()
        self.lock = threading.RLock()
        self._calls: list[RecordedCall] = []
        self._scripted: list[tuple[int, str | None, str | None]] = []
        self._delays: list[float] = []
        self._routes: list[tuple[str, re.Pattern, Handler]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.setup_routes()

    # --- configuration -----------------------------------------------------------------
    def setup_routes(self) -> None:  # pragma: no cover - subclasses override
        pass

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method.upper(), re.compile(f"^{pattern}$"), handler))

    def set_faults(self, rate: float, *, statuses: Iterable[int] = (429, 500, 503),
                   retry_after: str | None = "0", seed: int = 0, paths: str | None = None
                   ) -> None:
        with self.lock:
            self.faults = FaultPlan(rate=rate, statuses=tuple(statuses),
                                    retry_after=retry_after, seed=seed, paths=paths)

    def fail_next(self, status: int, *, times: int = 1, retry_after: str | None = None,
                  paths: str | None = None) -> None:
        """Answer the next `times` matching calls with `status` (before any FaultPlan)."""
        with self.lock:
            self._scripted.extend([(status, retry_after, paths)] * times)

    def delay_next(self, seconds: float, *, times: int = 1) -> None:
        """Process the next `times` calls normally but answer only after `seconds`: the
        client times out although the ESP did the work (an "in doubt" send)."""
        with self.lock:
            self._delays.extend([seconds] * times)

    # --- inspection ------------------------------------------------------------------
    @property
    def calls(self) -> list[RecordedCall]:
        with self.lock:
            return list(self._calls)

    def calls_to(self, method: str, path_pattern: str) -> list[RecordedCall]:
        rx = re.compile(f"^{path_pattern}$")
        return [c for c in self.calls if c.method == method.upper() and rx.match(c.path)]

    def reset_calls(self) -> None:
        with self.lock:
            self._calls.clear()

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> LoopbackServer:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Buffer the whole answer and send it in one go (flushed after each request);
            # headers and body in separate packets meet delayed ACKs and cost ~40 ms.
            wbufsize = 64 * 1024
            disable_nagle_algorithm = True

            def _handle(self) -> None:
                server._dispatch(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"{self.name}-loopback", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- request handling --------------------------------------------------------------
    def _take_fault(self, path: str) -> tuple[int, str | None] | None:
        for i, (status, retry_after, paths) in enumerate(self._scripted):
            if paths is None or re.search(paths, path):
                del self._scripted[i]
                return status, retry_after
        status = self.faults.pick(path)
        if status is not None:
            return status, self.faults.retry_after if status == 429 else None
        return None

    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        arrived = time.time()  # request line and headers are in; the body may follow
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        if len(body) < length:
            # The client hung up before its body was complete (a send stopped by the pause
            # flag before its last byte): like any HTTP server, do nothing with it.
            h.close_connection = True
            return
        call = RecordedCall(method=h.command, path=parts.path,
                            query=parse_qs(parts.query, keep_blank_values=True),
                            headers={k.lower(): v for k, v in h.headers.items()}, body=body,
                            at=arrived)
        with self.lock:
            fault = self._take_fault(call.path)
            if fault is not None:
                status, retry_after = fault
                reply = Reply(status, self.fault_body(status),
                              {"Retry-After": retry_after} if retry_after is not None else {})
            else:
                reply = self._route(call)
            self._calls.append(RecordedCall(**{**call.__dict__, "status": reply.status,
                                               "fault": fault is not None}))
            delay = self._delays.pop(0) if self._delays else 0.0
        if delay:
            time.sleep(delay)
        self._write(h, reply)

    def _route(self, call: RecordedCall) -> Reply:
        allowed = False
        for method, rx, handler in self._routes:
            match = rx.match(call.path)
            if match:
                if method == call.method:
                    try:
                        return handler(call, match)
                    except (ValueError, KeyError, TypeError) as exc:
                        return self.bad_request(f"malformed request: {exc}")
                allowed = True
        return Reply(405 if allowed else 404, {"error": "no such endpoint on this loopback"})

    def fault_body(self, status: int) -> Any:
        return {"error": "injected fault", "status": status}

    def bad_request(self, message: str) -> Reply:
        return Reply(400, {"error": message})

    @staticmethod
    def _write(h: BaseHTTPRequestHandler, reply: Reply) -> None:
        if reply.body is None:
            payload, ctype = b"", None
        elif isinstance(reply.body, str):
            payload, ctype = reply.body.encode(), "text/plain; charset=utf-8"
        else:
            payload, ctype = json.dumps(reply.body).encode(), "application/json"
        h.send_response(reply.status)
        if ctype:
            h.send_header("Content-Type", ctype)
        for name, value in reply.headers.items():
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        if payload:
            h.wfile.write(payload)
