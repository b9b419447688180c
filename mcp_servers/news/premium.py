"""Premium news: an x402-priced HTTP endpoint on the sandbox chain (specs/mcp/news.md, "Premium news (x402)").

`GET /premium/headlines?topic=<t>` answers 402 with a PAYMENT-REQUIRED header (x402 protocol v2) unless the
request carries a PAYMENT-SIGNATURE: an EIP-3009 authorization to pay the price in TestUSDC to the publisher.
A paid request is verified and settled by an in-process x402 facilitator (the library's own
x402FacilitatorSync, whose signer pays the gas of `transferWithAuthorization`), and only a settled payment gets
the headlines, with the settlement in a PAYMENT-RESPONSE header. A forged, underfunded, replayed or expired
payment gets 402 with the x402 error reason and no content.

Headlines come from `<sandbox>/news/premium.json` (a list of articles in the news feed's shape, re-read on each
request) when it exists, else from a small built-in seed. The server listens on loopback only.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from web3 import Web3
from x402 import AssetAmount, x402FacilitatorSync, x402ResourceServerSync
from x402.http import HTTPRequestContext, PaymentOption, RouteConfig, x402HTTPResourceServerSync
from x402.http.constants import PAYMENT_REQUIRED_HEADER
from x402.http.types import HTTPResponseInstructions
from x402.http.utils import decode_payment_required_header
from x402.mechanisms.evm import FacilitatorWeb3Signer
from x402.mechanisms.evm.exact.register import register_exact_evm_facilitator, register_exact_evm_server

PATH = "/premium/headlines"
PREMIUM_FILE = Path("news") / "premium.json"
DEFAULT_PRICE = 50_000  # 0.05 USDC in base units
MAX_TIMEOUT_SECONDS = 300  # how long a signed authorization stays valid
LOOPBACK = ("127.0.0.1", "localhost", "::1")
FACILITATOR_KEY_SECRET = "news/premium-facilitator-key"
# TestUSDC's EIP-712 domain (chimera/chain/contracts/TestUSDC.sol): what the payer signs under.
TOKEN_DOMAIN = {"name": "USDC", "version": "2"}
HEADLINE_FIELDS = ("id", "title", "summary", "source", "url", "topic", "published_at")
MAX_HEADLINES = 20

SEED: tuple[dict[str, str], ...] = (
    {
        "id": "pn-001",
        "title": "Inside the Resale Boom: Why Luxury Houses Are Buying Back Their Own Bags",
        "summary": "Three maisons now run certified resale desks; margins on second-hand pieces beat new stock.",
        "source": "Sandbox Premium Wire",
        "url": "https://premium.sandbox.news.local/fashion/luxury-buy-back",
        "topic": "fashion",
        "published_at": "2026-11-25T06:30:00Z",
    },
    {
        "id": "pn-002",
        "title": "Exclusive: Retailers' Textile Take-Back Volumes Triple Ahead of EU Rules",
        "summary": "Internal figures from five chains show collection bins filling faster than sorters can cope.",
        "source": "Sandbox Premium Wire",
        "url": "https://premium.sandbox.news.local/sustainability/take-back-volumes",
        "topic": "sustainability",
        "published_at": "2026-11-25T05:10:00Z",
    },
    {
        "id": "pn-003",
        "title": "Analysis: Why Holiday Footfall Is Up While Basket Sizes Shrink",
        "summary": "Shoppers visit more often and buy less each time; discounters gain the most.",
        "source": "Sandbox Premium Wire",
        "url": "https://premium.sandbox.news.local/retail/footfall-baskets",
        "topic": "retail",
        "published_at": "2026-11-24T18:00:00Z",
    },
    {
        "id": "pn-004",
        "title": "Briefing: Virtual Try-On Cuts Returns by a Fifth at Early Adopters",
        "summary": "Fit-prediction pilots at two online fashion stores report fewer size-related returns.",
        "source": "Sandbox Premium Wire",
        "url": "https://premium.sandbox.news.local/tech/virtual-try-on-returns",
        "topic": "tech",
        "published_at": "2026-11-24T12:00:00Z",
    },
)


class PremiumFeedError(Exception):
    """`<sandbox>/news/premium.json` is not a list of articles."""


def load_headlines(sandbox_dir: Path | None, topic: str | None) -> list[dict[str, str]]:
    """The premium headlines for `topic` (all when None), newest first, in the Headline shape of schemas/plan.py."""
    path = None if sandbox_dir is None else sandbox_dir / PREMIUM_FILE
    articles: list[Any] = list(SEED)
    if path is not None and path.exists():
        try:
            articles = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise PremiumFeedError(f"{path} is unreadable: {exc}") from exc
        if not isinstance(articles, list) or not all(isinstance(a, dict) and a.get("title") for a in articles):
            raise PremiumFeedError(f"{path} is not a JSON list of articles with titles")
    wanted = None if topic is None else topic.strip().lower()
    chosen = [a for a in articles if wanted is None or str(a.get("topic", "")).lower() == wanted]
    chosen.sort(key=lambda a: str(a.get("published_at", "")), reverse=True)
    return [{f: str(a.get(f) or "") for f in HEADLINE_FIELDS} for a in chosen[:MAX_HEADLINES]]


@dataclass(frozen=True)
class _Adapter:
    """x402's HTTPAdapter over one http.server request."""

    method: str
    url: str
    headers: Mapping[str, str]

    def get_header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def get_method(self) -> str:
        return self.method

    def get_path(self) -> str:
        return urlsplit(self.url).path

    def get_url(self) -> str:
        return self.url

    def get_accept_header(self) -> str:
        return self.headers.get("accept", "")

    def get_user_agent(self) -> str:
        return self.headers.get("user-agent", "")

    def get_query_params(self) -> dict[str, str | list[str]]:
        return {k: v[0] if len(v) == 1 else v for k, v in parse_qs(urlsplit(self.url).query).items()}

    def get_query_param(self, name: str) -> str | list[str] | None:
        return self.get_query_params().get(name)

    def get_body(self) -> Any:
        return None


class _PaidEndpoint:
    """The x402 resource server for the one priced route, with its in-process facilitator."""

    def __init__(
        self, rpc_url: str, token_address: str, pay_to: str, facilitator_key: str, price: int, sandbox_dir: Path | None
    ) -> None:
        chain_id = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 10})).eth.chain_id
        self.network = f"eip155:{chain_id}"
        facilitator = x402FacilitatorSync()
        register_exact_evm_facilitator(facilitator, FacilitatorWeb3Signer(facilitator_key, rpc_url), self.network)
        server = x402ResourceServerSync(facilitator)
        register_exact_evm_server(server, self.network)
        option = PaymentOption(
            scheme="exact",
            pay_to=Web3.to_checksum_address(pay_to),
            price=AssetAmount(amount=str(price), asset=Web3.to_checksum_address(token_address), extra=TOKEN_DOMAIN),
            network=self.network,
            max_timeout_seconds=MAX_TIMEOUT_SECONDS,
        )
        route = RouteConfig(
            accepts=option,
            description="Premium news headlines, by topic",
            mime_type="application/json",
        )
        self.http = x402HTTPResourceServerSync(server, {f"GET {PATH}": route})
        self.http.initialize()
        self.sandbox_dir = sandbox_dir
        # One paid request at a time: a replay racing its original is refused at verify, not after both settle.
        self.settling = threading.Lock()


def _handler(endpoint: _PaidEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "ChimeraPremiumNews/1"

        def do_GET(self) -> None:
            split = urlsplit(self.path)
            if split.path != PATH:
                self._json(404, {"error": "not_found", "message": f"only GET {PATH} is served"})
                return
            query = parse_qs(split.query)
            topic = query.get("topic", [None])[0]
            headers = {k.lower(): v for k, v in self.headers.items()}
            host = headers.get("host", "127.0.0.1")
            adapter = _Adapter("GET", f"http://{host}{self.path}", headers)
            context = HTTPRequestContext(
                adapter=adapter, path=split.path, method="GET", payment_header=adapter.get_header("payment-signature")
            )
            with endpoint.settling:
                result = endpoint.http.process_http_request(context)
                if result.type != "payment-verified":
                    self._instructions(result.response)
                    return
                assert result.payment_payload is not None and result.payment_requirements is not None
                try:
                    # Read before settling: content that cannot be served is never charged for.
                    body = {"headlines": load_headlines(endpoint.sandbox_dir, topic), "topic": topic}
                except PremiumFeedError as exc:
                    self._json(503, {"error": "feed_invalid", "message": str(exc)})
                    return
                settled = endpoint.http.process_settlement(
                    result.payment_payload, result.payment_requirements, context=context
                )
            if not settled.success:
                self._instructions(settled.response)
                return
            self._json(200, body, settled.headers)

        def _instructions(self, response: HTTPResponseInstructions | None) -> None:
            if response is None:
                self._json(402, {"error": "payment_required"})
                return
            body = response.body or {}
            required = response.headers.get(PAYMENT_REQUIRED_HEADER)
            if response.status == 402 and required and not body:
                # The reason is in the header already; the body says it too, for a reader without an x402 client.
                body = {"error": decode_payment_required_header(required).error or "payment_required"}
            self._json(response.status, body, response.headers)

        def _json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
            data = json.dumps(body).encode("utf-8")
            self.send_response(status)
            for name, value in (headers or {}).items():
                if name.lower() not in ("content-type", "content-length"):
                    self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: request lines carry signed payment headers' sizes only, but a test run needs no noise

    return Handler


class PremiumNews:
    """A running premium news server: `.url` is its base URL (`http://127.0.0.1:<port>`)."""

    def __init__(self, httpd: ThreadingHTTPServer, network: str, price: int) -> None:
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, name="premium-news", daemon=True)
        self._thread.start()
        host, port = httpd.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self.network = network
        self.price = price

    def headlines_url(self, topic: str | None = None) -> str:
        """The priced endpoint's URL, for `topic` (or every topic)."""
        return f"{self.url}{PATH}" + (f"?{urlencode({'topic': topic})}" if topic else "")

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> PremiumNews:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_premium_news(
    rpc_url: str,
    token_address: str,
    pay_to: str,
    facilitator_key: str,
    *,
    price: int = DEFAULT_PRICE,
    sandbox_dir: Path | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> PremiumNews:
    """Serve premium headlines at `price` base units of the token at `token_address`, paid to `pay_to`.

    `facilitator_key` is the private key of the account that settles payments and pays their gas (an anvil dev
    account in the sandbox); it is used, never logged or stored. `port` 0 picks a free port."""
    if host not in LOOPBACK:
        raise ValueError(f"the premium news server listens on loopback only, not {host!r}")
    if isinstance(price, bool) or not isinstance(price, int) or price <= 0:
        raise ValueError(f"a price is a positive whole number of base units, got {price!r}")
    endpoint = _PaidEndpoint(rpc_url, token_address, pay_to, facilitator_key, price, sandbox_dir)
    httpd = ThreadingHTTPServer((host, port), _handler(endpoint))
    httpd.daemon_threads = True
    return PremiumNews(httpd, endpoint.network, price)


@contextmanager
def _until_signalled() -> Iterator[threading.Event]:
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def main(argv: list[str] | None = None) -> None:
    from chimera.secrets import secret_source
    from chimera.secrets.base import require
    from chimera.settings import Settings
    from mcp_servers.common import sandbox_dir_from_env

    parser = argparse.ArgumentParser(
        prog="python -m mcp_servers.news.premium",
        description="Serve x402-priced premium headlines on the sandbox chain. The facilitator's key is the "
        f"secret {FACILITATOR_KEY_SECRET!r} (e.g. CHIMERA_SECRET_NEWS_PREMIUM_FACILITATOR_KEY).",
    )
    parser.add_argument("--rpc-url", required=True, help="the anvil JSON-RPC URL")
    parser.add_argument("--pay-to", required=True, help="the publisher's address, which receives the payments")
    parser.add_argument("--token", help="the TestUSDC address (default: the wallet's <sandbox>/wallet/token.json)")
    parser.add_argument("--price", type=int, default=DEFAULT_PRICE, help="base units per request (default 50000)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    sandbox = sandbox_dir_from_env()
    token = args.token or json.loads((sandbox / "wallet" / "token.json").read_text())["address"]
    key = require(secret_source(Settings()), FACILITATOR_KEY_SECRET)
    with (
        start_premium_news(
            args.rpc_url, token, args.pay_to, key, price=args.price, sandbox_dir=sandbox, host=args.host, port=args.port
        ) as running,
        _until_signalled() as stop,
    ):
        print(f"premium news at {running.headlines_url()} ({args.price} base units on {running.network})", flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
