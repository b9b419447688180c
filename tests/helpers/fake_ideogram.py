"""A loopback stand-in for Ideogram 3.0: `POST /v1/ideogram-v3/generate` in the documented shapes, and the
ephemeral image URLs it answers with. It records every request, so tests can check what the client sent."""

from __future__ import annotations

import email.policy
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.parser import BytesParser
from http.server import ThreadingHTTPServer
from urllib.parse import urlsplit

from PIL import Image

from tests.helpers.fake_http import JsonHandler

API_KEY = "ideogram-test-key-0123456789"
GENERATE_PATH = "/v1/ideogram-v3/generate"
RESOLUTIONS = {"1x1": "1024x1024", "4x5": "896x1120", "16x9": "1312x736", "9x16": "736x1312"}


@dataclass
class Part:
    value: bytes
    filename: str | None = None
    content_type: str | None = None

    @property
    def text(self) -> str:
        return self.value.decode("utf-8")


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    parts: dict[str, list[Part]] = field(default_factory=dict)


class FakeIdeogram:
    """Modes: "ok", "bad-request" (400), "rate-limited" (429 with Retry-After), "unsafe-image" (200 with
    is_image_safe false), "not-an-image" (the download is HTML). A prompt containing "forbidden" fails the
    safety check (422); a wrong Api-Key is 401."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.mode = "ok"
        self.base_url = ""
        self._images: dict[str, bytes] = {}
        self._counter = 0

    def generations(self) -> list[Received]:
        return [r for r in self.requests if r.method == "POST"]

    def downloads(self) -> list[Received]:
        return [r for r in self.requests if r.method == "GET"]

    def make_image(self, resolution: str, seed: int) -> str:
        width, height = (int(n) for n in resolution.split("x"))
        out = io.BytesIO()
        Image.new("RGB", (width, height), (seed % 256, 90, 160)).save(out, format="PNG")
        self._counter += 1
        image_id = f"xtdZiq{self._counter:04d}"
        self._images[image_id] = out.getvalue()
        return f"{self.base_url}/api/images/ephemeral/{image_id}.png?exp=1764000000&signature=abc123"


def _parse_multipart(content_type: str, body: bytes) -> dict[str, list[Part]]:
    message = BytesParser(policy=email.policy.HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    parts: dict[str, list[Part]] = {}
    if not message.is_multipart():
        return parts
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes), f"part {name!r} has no byte payload"
        parts.setdefault(str(name), []).append(
            Part(payload, part.get_filename(), part.get_content_type() if part.get_filename() else None)
        )
    return parts


class _Handler(JsonHandler):
    api: FakeIdeogram

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        parts = _parse_multipart(self.headers.get("Content-Type", ""), body)
        self.api.requests.append(Received("POST", self.path, dict(self.headers.items()), parts))
        prompt = parts["prompt"][0].text if "prompt" in parts else ""
        if urlsplit(self.path).path != GENERATE_PATH:
            self._send(404, {"detail": "Not Found"})
        elif self.headers.get("Api-Key") != API_KEY:
            self._send(401, {"detail": "Unauthorized"})
        elif not self.headers.get("Content-Type", "").startswith("multipart/form-data") or not prompt:
            self._send(400, {"detail": "prompt is required"})
        elif self.api.mode == "bad-request":
            self._send(400, {"detail": "Invalid input provided."})
        elif self.api.mode == "rate-limited":
            self._send(429, {"detail": "Too many requests."}, {"Retry-After": "30"})
        elif "forbidden" in prompt.lower():
            self._send(422, {"detail": "Prompt failed the safety check."})
        else:
            ratio = parts["aspect_ratio"][0].text if "aspect_ratio" in parts else "1x1"
            resolution = RESOLUTIONS.get(ratio, "1024x1024")
            seed = int(parts["seed"][0].text) if "seed" in parts else 1234567
            safe = self.api.mode != "unsafe-image"
            self._send(
                200,
                {
                    "created": "2026-11-24T10:00:00Z",
                    "data": [
                        {
                            "prompt": prompt,
                            "resolution": resolution,
                            "is_image_safe": safe,
                            "seed": seed,
                            "url": self.api.make_image(resolution, seed) if safe else None,
                            "style_type": parts["style_type"][0].text if "style_type" in parts else "GENERAL",
                        }
                    ],
                },
            )

    def do_GET(self) -> None:
        self.api.requests.append(Received("GET", self.path, dict(self.headers.items())))
        path = urlsplit(self.path).path
        image_id = path.rsplit("/", 1)[-1].removesuffix(".png")
        data = self.api._images.get(image_id) if path.startswith("/api/images/ephemeral/") else None
        if data is None:
            self._send(404, {"detail": "Not Found"})
        elif self.api.mode == "not-an-image":
            self._raw(200, b"<html>expired</html>", "text/html")
        else:
            self._raw(200, data, "image/png")


@contextmanager
def fake_ideogram() -> Iterator[FakeIdeogram]:
    """A FakeIdeogram listening on a free loopback port; its base_url is set."""
    api = FakeIdeogram()
    handler = type("Handler", (_Handler,), {"api": api})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    api.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
