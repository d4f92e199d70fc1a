"""``poiflow label --web``: the labelling questions in a local web page, with the two
records side by side on a map, answered with the keyboard alone (y / n / s, q to stop).

A small HTTP server on 127.0.0.1 (the standard library's), storing each answer in the same
labels file as the terminal flow. ``poiflow serve`` serves the same page at ``/review``.
"""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from poiflow.cli import console
from poiflow.conflate.active import RecordCards
from poiflow.serving.pages import label_page

__all__ = ["LabellingServer", "serve_labelling"]

_MAX_BODY = 4096


class LabellingServer(ThreadingHTTPServer):
    """Serves the questions one by one and stores the answers."""

    daemon_threads = True

    def __init__(
        self, chosen: Any, records: Any, store: Path, *, port: int, labeller: str = ""
    ) -> None:
        self.pairs: list[dict[str, Any]] = list(chosen.iter_rows(named=True))
        self.view = RecordCards(records, chosen)
        self.store = store
        self.labeller = labeller
        self.answered: dict[int, str] = {}
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    def question(self, index: int) -> dict[str, Any] | None:
        """Pair ``index`` as the page shows it, or None past the last."""
        if index >= len(self.pairs):
            return None
        return self.view.question(self.pairs[index], index, len(self.pairs))

    def answer(self, index: int, label: str) -> None:
        """Store the answer to pair ``index``."""
        from poiflow.conflate.active import append_label

        with self.lock:
            append_label(self.store, self.pairs[index], label, labeller=self.labeller)  # type: ignore[arg-type]
            self.answered[index] = label


class _Handler(BaseHTTPRequestHandler):
    server: LabellingServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the terminal shows progress, not a request log."""

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def do_GET(self) -> None:
        if self.path == "/":
            self._send(HTTPStatus.OK, label_page(served=False).encode(), "text/html; charset=utf-8")
        elif self.path == "/favicon.ico":  # browsers ask; no icon, and no error in the console
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
        elif self.path.startswith("/question/"):
            number = self.path.removeprefix("/question/")
            if not number.isdigit():
                self._json(
                    HTTPStatus.BAD_REQUEST, {"error": "the question number is a whole number"}
                )
                return
            self._json(HTTPStatus.OK, self.server.question(int(number)) or {"done": True})
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no page {self.path}"})

    def do_POST(self) -> None:
        if self.path == "/quit":
            self._json(HTTPStatus.OK, {"stopped": True})
            threading.Thread(target=self.server.shutdown, daemon=True).start()
            return
        if self.path != "/answer":
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no endpoint {self.path}"})
            return
        size = int(self.headers.get("Content-Length") or 0)
        if size > _MAX_BODY:
            self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "the answer is too large"})
            return
        try:
            body = json.loads(self.rfile.read(size) or b"{}")
            index, label = int(body["index"]), str(body["label"])
        except (ValueError, KeyError, TypeError):
            self._json(
                HTTPStatus.UNPROCESSABLE_ENTITY, {"error": 'send {"index": n, "label": ...}'}
            )
            return
        if label not in ("match", "different", "unsure") or not 0 <= index < len(self.server.pairs):
            self._json(
                HTTPStatus.UNPROCESSABLE_ENTITY,
                {"error": "label is match, different or unsure; index one of the questions"},
            )
            return
        self.server.answer(index, label)
        self._json(HTTPStatus.OK, {"stored": True, "answered": len(self.server.answered)})


def serve_labelling(
    chosen: Any, records: Any, store: Path, *, port: int, labeller: str = ""
) -> None:
    """Serve the questions until every one is answered or the page says stop."""
    server = LabellingServer(chosen, records, store, port=port, labeller=labeller)
    console.print(
        f"open [bold]http://127.0.0.1:{server.server_address[1]}/[/bold] "
        f"({len(server.pairs)} questions; answers go to {store}); Ctrl-C or q stops"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    console.print(f"{len(server.answered)} answers added to [bold]{store}[/bold]")
