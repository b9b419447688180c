"""News backends: a replaceable local JSON feed (sandbox) and a NewsAPI-compatible HTTP API (live).

The sandbox also reads its newsroom, `<CHIMERA_SANDBOX_DIR>/news/breaking.json` when it exists: headlines a
demo or a test publishes while Chimera runs (mcp_servers/news/newsroom.py), merged with the feed.

Both return articles in one shape, {id, title, summary, source, url, topic, region, published_at},
and report every failure as a NewsError, which the server turns into the social servers' error JSON.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

# The mcp SDK ships its HTTP client as the `httpx2` distribution; there is no plain `httpx` in the venv.
import httpx2 as httpx

from chimera.retry_after import retry_after_header
from mcp_servers.common import ToolError, json_object

BACKEND_ENV = "CHIMERA_NEWS_BACKEND"
FEED_ENV = "CHIMERA_NEWS_FEED"
API_KEY_ENV = "CHIMERA_NEWS_API_KEY"
BASE_URL_ENV = "CHIMERA_NEWS_BASE_URL"
DEFAULT_BASE_URL = "https://newsapi.org"
SEED_FEED = Path(__file__).resolve().parent.parent / "seed" / "news_feed.json"
SANDBOX_DIR_ENV = "CHIMERA_SANDBOX_DIR"  # what McpHost gives every server it starts
NEWSROOM_FILE = Path("news") / "breaking.json"

# NewsAPI caps pageSize at 100; the sandbox applies the same bound so both backends accept the same calls.
MAX_LIMIT = 100
ARTICLE_FIELDS = ("id", "title", "summary", "source", "url", "topic", "region", "published_at")
GLOBAL_REGION = "global"
# top-headlines accepts only these as `category`; any other topic becomes a keyword search (`q`).
NEWSAPI_CATEGORIES = ("business", "entertainment", "general", "health", "science", "sports", "technology")
HTTP_TIMEOUT_SECONDS = 10.0


class NewsError(ToolError):
    """A news failure with a machine-readable code; reuses the social servers' error JSON (`to_dict`)."""


class NewsBackend(Protocol):
    def headlines(self, topic: str | None = None, region: str | None = None, limit: int = 10) -> list[dict[str, Any]]:
        """Newest first."""
        ...

    def trending_topics(self, region: str | None = None, limit: int = 5) -> list[dict[str, Any]]:
        """[{topic, count}], most headlines first."""
        ...


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise NewsError("invalid_limit", f"limit must be between 1 and {MAX_LIMIT}; got {limit!r}")
    return limit


def count_topics(articles: Iterable[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    counts = Counter(a["topic"] for a in articles if a.get("topic"))
    # Ties broken by name so the answer is stable across calls.
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [{"topic": topic, "count": count} for topic, count in ranked[:limit]]


class SandboxNewsBackend:
    """Headlines from a local JSON list of articles. The file is re-read on every call, so it can be
    swapped while a server runs."""

    def __init__(self, feed_path: Path = SEED_FEED, newsroom: Path | None = None) -> None:
        self.feed_path = feed_path
        self.newsroom = newsroom

    def _load(self) -> list[dict[str, Any]]:
        articles = _read_feed(self.feed_path)
        if self.newsroom is not None and self.newsroom.exists():
            ids = {a["id"] for a in articles}
            articles += [a for a in _read_feed(self.newsroom) if a["id"] not in ids]
        return articles

    def _matching(self, topic: str | None, region: str | None) -> list[dict[str, Any]]:
        articles = self._load()
        if topic:
            articles = [a for a in articles if a["topic"].casefold() == topic.casefold()]
        if region:
            articles = [a for a in articles if a["region"].casefold() == region.casefold()]
        # ISO-8601 UTC strings of one width sort as time.
        return sorted(articles, key=lambda a: a["published_at"], reverse=True)

    def headlines(self, topic: str | None = None, region: str | None = None, limit: int = 10) -> list[dict[str, Any]]:
        return self._matching(topic, region)[: check_limit(limit)]

    def trending_topics(self, region: str | None = None, limit: int = 5) -> list[dict[str, Any]]:
        return count_topics(self._matching(None, region), check_limit(limit))


def _read_feed(path: Path) -> list[dict[str, Any]]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise NewsError("feed_invalid", f"news feed {path}: cannot read: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise NewsError("feed_invalid", f"news feed {path}: not valid JSON: {exc}") from exc
    if not isinstance(raw, list):
        raise NewsError("feed_invalid", f"news feed {path}: expected a JSON list of articles")
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise NewsError("feed_invalid", f"news feed {path}: item {index} is not an object")
        bad = [f for f in ARTICLE_FIELDS if not isinstance(item.get(f), str) or not item[f].strip()]
        if bad:
            raise NewsError(
                "feed_invalid", f"news feed {path}: item {index} lacks non-empty string field(s) {', '.join(bad)}"
            )
    return [{f: item[f] for f in ARTICLE_FIELDS} for item in raw]


class LiveNewsBackend:
    """NewsAPI's `GET /v2/top-headlines`, authenticated with the `X-Api-Key` header (never in the URL, so
    the key cannot end up in a logged URL or an error message)."""

    def __init__(self, base_url: str, api_key: str, *, timeout_seconds: float = HTTP_TIMEOUT_SECONDS) -> None:
        if not api_key:
            raise ValueError(f"the live news backend needs an API key in {API_KEY_ENV}")
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout_seconds = timeout_seconds

    def __repr__(self) -> str:
        return f"LiveNewsBackend(base_url={self.base_url!r})"

    def _top_headlines(self, params: dict[str, str | int]) -> dict[str, Any]:
        try:
            response = httpx.get(
                f"{self.base_url}/v2/top-headlines",
                params=params,
                headers={"X-Api-Key": self._api_key, "Accept": "application/json"},
                timeout=self._timeout_seconds,
            )
        except httpx.HTTPError as exc:
            raise NewsError("unavailable", f"news API unreachable: {type(exc).__name__}: {exc}") from exc
        body = json_object(response)
        if not body:
            raise NewsError("upstream_error", f"news API answered HTTP {response.status_code} without a JSON object")
        if response.status_code == 200 and body.get("status") == "ok":
            return body
        raise _api_error(response, body)

    def _params(self, topic: str | None, region: str | None, limit: int) -> dict[str, str | int]:
        params: dict[str, str | int] = {"pageSize": limit}
        if region and region.casefold() != GLOBAL_REGION:
            params["country"] = region.lower()  # NewsAPI's country codes are lowercase ISO 3166-1
        if topic:
            if topic.lower() in NEWSAPI_CATEGORIES:
                params["category"] = topic.lower()
            else:
                params["q"] = topic
        if len(params) == 1:
            # top-headlines refuses a request without country, category, sources or q.
            params["category"] = "general"
        return params

    def headlines(self, topic: str | None = None, region: str | None = None, limit: int = 10) -> list[dict[str, Any]]:
        body = self._top_headlines(self._params(topic, region, check_limit(limit)))
        articles = body.get("articles")
        if not isinstance(articles, list):
            raise NewsError("upstream_error", "news API answered without an articles list")
        label_region = region.upper() if region and region.casefold() != GLOBAL_REGION else GLOBAL_REGION
        return [_article(a, topic, label_region) for a in articles if isinstance(a, dict)]

    def trending_topics(self, region: str | None = None, limit: int = 5) -> list[dict[str, Any]]:
        # NewsAPI articles carry no topic, so count per category: one pageSize=1 request each, reading totalResults.
        check_limit(limit)
        counts: list[dict[str, Any]] = []
        for category in NEWSAPI_CATEGORIES:
            body = self._top_headlines(self._params(category, region, 1))
            total = body.get("totalResults")
            if isinstance(total, int) and not isinstance(total, bool) and total > 0:
                counts.append({"topic": category, "count": total})
        counts.sort(key=lambda t: (-t["count"], t["topic"]))
        return counts[:limit]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _article(raw: dict[str, Any], topic: str | None, region: str) -> dict[str, Any]:
    source = raw.get("source")
    url = _text(raw.get("url"))
    return {
        "id": url,  # NewsAPI has no article id; the URL is the stable identity
        "title": _text(raw.get("title")),
        "summary": _text(raw.get("description")),
        "source": _text(source.get("name")) if isinstance(source, dict) else "",
        "url": url,
        "topic": topic.lower() if topic else None,
        "region": region,
        "published_at": _text(raw.get("publishedAt")),
    }


# NewsAPI error codes (https://newsapi.org/docs/errors) mapped onto the codes the MCP host understands.
_ERROR_CODES = {
    "apiKeyDisabled": "unauthorized",
    "apiKeyInvalid": "unauthorized",
    "apiKeyMissing": "unauthorized",
    "apiKeyExhausted": "quota_exhausted",
    "parameterInvalid": "invalid_request",
    "parametersMissing": "invalid_request",
    "rateLimited": "rate_limited",
}


def _api_error(response: httpx.Response, body: dict[str, Any]) -> NewsError:
    upstream = _text(body.get("code")) or f"http_{response.status_code}"
    message = f"news API {upstream} (HTTP {response.status_code}): {_text(body.get('message'))[:500]}"
    code = _ERROR_CODES.get(upstream, "rate_limited" if response.status_code == 429 else "upstream_error")
    retry_after: float | None = None
    if code == "rate_limited":
        retry_after = retry_after_header(response.headers.get("Retry-After"))  # None: the host's own backoff
    return NewsError(code, message, retry_after)


def backend_from_env(environ: Mapping[str, str] | None = None) -> NewsBackend:
    env: Mapping[str, str] = os.environ if environ is None else environ
    kind = (env.get(BACKEND_ENV) or "sandbox").strip().lower()
    if kind == "sandbox":
        sandbox = env.get(SANDBOX_DIR_ENV)
        newsroom = Path(sandbox) / NEWSROOM_FILE if sandbox else None
        return SandboxNewsBackend(Path(env.get(FEED_ENV) or SEED_FEED), newsroom)
    if kind == "live":
        return LiveNewsBackend(env.get(BASE_URL_ENV) or DEFAULT_BASE_URL, env.get(API_KEY_ENV) or "")
    raise ValueError(f"{BACKEND_ENV} must be 'sandbox' or 'live'; got {kind!r}")
