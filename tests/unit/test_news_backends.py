"""The news backends: the sandbox feed, and the live client against a local NewsAPI look-alike."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from mcp_servers.news.backends import (
    SEED_FEED,
    LiveNewsBackend,
    NewsError,
    SandboxNewsBackend,
    backend_from_env,
)
from tests.helpers.fake_http import JsonHandler

API_KEY = "test-key-0123456789"

# -- sandbox --------------------------------------------------------------------------------


def test_seed_feed_is_complete_and_varied() -> None:
    articles = SandboxNewsBackend().headlines(limit=100)
    assert len(articles) >= 15
    assert {"DE", "US", "GB", "global"} <= {a["region"] for a in articles}
    assert {"fashion", "sustainability", "retail", "tech", "crypto"} <= {a["topic"] for a in articles}
    assert len({a["id"] for a in articles}) == len(articles)
    stamps = [a["published_at"] for a in articles]
    assert stamps == sorted(stamps, reverse=True)


def test_sandbox_filters_by_topic_region_and_limit() -> None:
    news = SandboxNewsBackend(SEED_FEED)
    sustainability = news.headlines(topic="Sustainability", limit=100)
    assert sustainability and all(a["topic"] == "sustainability" for a in sustainability)
    german = news.headlines(region="de", limit=100)
    assert german and all(a["region"] == "DE" for a in german)
    both = news.headlines(topic="retail", region="DE", limit=100)
    assert both and all(a["topic"] == "retail" and a["region"] == "DE" for a in both)
    assert len(both) < len(german)
    assert len(news.headlines(limit=3)) == 3
    assert news.headlines(topic="no-such-topic") == []
    with pytest.raises(NewsError) as err:
        news.headlines(limit=0)
    assert err.value.code == "invalid_limit"


def test_sandbox_trending_counts_headlines_per_topic(tmp_path: Path) -> None:
    feed = tmp_path / "feed.json"
    items = [("a", "tech", "US"), ("b", "tech", "DE"), ("c", "tech", "US"), ("d", "retail", "US")]
    items += [("e", "fashion", "US"), ("f", "fashion", "US")]
    feed.write_text(json.dumps([_item(*item) for item in items]))
    news = SandboxNewsBackend(feed)
    assert news.trending_topics() == [
        {"topic": "tech", "count": 3},
        {"topic": "fashion", "count": 2},
        {"topic": "retail", "count": 1},
    ]
    assert news.trending_topics(region="US", limit=2) == [
        {"topic": "fashion", "count": 2},
        {"topic": "tech", "count": 2},
    ]


def test_feed_is_replaceable_via_env_and_reread(tmp_path: Path) -> None:
    feed = tmp_path / "feed.json"
    feed.write_text(json.dumps([_item("x-1", "tech", "FR")]))
    news = backend_from_env({"CHIMERA_NEWS_FEED": str(feed)})
    assert [a["id"] for a in news.headlines()] == ["x-1"]
    feed.write_text(json.dumps([_item("x-2", "fashion", "FR"), _item("x-3", "fashion", "FR")]))
    assert news.trending_topics() == [{"topic": "fashion", "count": 2}]
    default = backend_from_env({})
    assert isinstance(default, SandboxNewsBackend) and default.feed_path == SEED_FEED


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not valid JSON"),
        ('{"articles": []}', "expected a JSON list"),
        ("[1]", "item 0 is not an object"),
        (json.dumps([{"id": "n", "title": "t"}]), "item 0 lacks non-empty string field(s) summary, source"),
    ],
)
def test_malformed_feed_names_file_and_problem(tmp_path: Path, content: str, problem: str) -> None:
    feed = tmp_path / "broken.json"
    feed.write_text(content)
    with pytest.raises(NewsError) as err:
        SandboxNewsBackend(feed).headlines()
    assert err.value.code == "feed_invalid"
    assert str(feed) in err.value.message and problem in err.value.message


def test_missing_feed_and_bad_backend_name(tmp_path: Path) -> None:
    with pytest.raises(NewsError, match="cannot read") as err:
        SandboxNewsBackend(tmp_path / "absent.json").trending_topics()
    assert str(tmp_path / "absent.json") in err.value.message
    with pytest.raises(ValueError, match="sandbox' or 'live"):
        backend_from_env({"CHIMERA_NEWS_BACKEND": "carrier-pigeon"})
    with pytest.raises(ValueError, match="CHIMERA_NEWS_API_KEY"):
        backend_from_env({"CHIMERA_NEWS_BACKEND": "live"})


def _item(item_id: str, topic: str, region: str) -> dict[str, str]:
    return {
        "id": item_id,
        "title": f"title {item_id}",
        "summary": "s",
        "source": "src",
        "url": f"https://example.test/{item_id}",
        "topic": topic,
        "region": region,
        "published_at": "2026-11-24T00:00:00Z",
    }


# -- live, against a local NewsAPI look-alike -----------------------------------------------------


class FakeNewsApi:
    """Answers /v2/top-headlines in NewsAPI's documented shapes and records what it received."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], dict[str, str]]] = []  # (path, query, headers)
        self.mode = "ok"
        self.total_by_category = {"technology": 38, "business": 70, "health": 5}


class _Handler(JsonHandler):
    api: FakeNewsApi

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.api.requests.append((url.path, query, dict(self.headers.items())))
        if self.headers.get("X-Api-Key") != API_KEY or self.api.mode == "bad-key":
            self._send(
                401,
                {
                    "status": "error",
                    "code": "apiKeyInvalid",
                    "message": "Your API key is invalid or incorrect. Check your key, or go to "
                    "https://newsapi.org to create a free API key.",
                },
            )
        elif self.api.mode == "rate-limited":
            body = {
                "status": "error",
                "code": "rateLimited",
                "message": "You have been rate limited. Back off for a while before trying the request again.",
            }
            self._send(429, body, {"Retry-After": "120"})
        elif url.path != "/v2/top-headlines":
            self._send(404, {"status": "error", "code": "routeNotFound", "message": "no such route"})
        else:
            total = self.api.total_by_category.get(query.get("category", ""), 0) if "q" not in query else 2
            articles = [
                {
                    "source": {"id": "reuters", "name": "Reuters"},
                    "author": "A. Writer",
                    "title": "Repair economy grows",
                    "description": "Repairs are up.",
                    "url": "https://example.test/repair",
                    "urlToImage": None,
                    "publishedAt": "2026-11-24T08:00:00Z",
                    "content": "Repairs are up… [+1200 chars]",
                },
                {
                    "source": {"id": None, "name": "Heise"},
                    "author": None,
                    "title": "Sorting robots",
                    "description": None,
                    "url": "https://example.test/robots",
                    "urlToImage": None,
                    "publishedAt": "2026-11-24T07:00:00Z",
                    "content": None,
                },
            ][: int(query.get("pageSize", "20"))]
            self._send(200, {"status": "ok", "totalResults": total, "articles": articles})


@pytest.fixture
def fake_api() -> Iterator[tuple[FakeNewsApi, str]]:
    api = FakeNewsApi()
    handler = type("Handler", (_Handler,), {"api": api})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield api, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def test_live_headlines_send_key_header_and_newsapi_params(fake_api: tuple[FakeNewsApi, str]) -> None:
    api, base_url = fake_api
    news = LiveNewsBackend(base_url + "/", API_KEY)

    articles = news.headlines(topic="Technology", region="DE", limit=2)

    path, query, headers = api.requests[-1]
    assert path == "/v2/top-headlines"
    assert query == {"country": "de", "category": "technology", "pageSize": "2"}
    assert headers["X-Api-Key"] == API_KEY
    assert API_KEY not in json.dumps(query)  # the key travels only in the header
    assert articles == [
        {
            "id": "https://example.test/repair",
            "title": "Repair economy grows",
            "summary": "Repairs are up.",
            "source": "Reuters",
            "url": "https://example.test/repair",
            "topic": "technology",
            "region": "DE",
            "published_at": "2026-11-24T08:00:00Z",
        },
        {
            "id": "https://example.test/robots",
            "title": "Sorting robots",
            "summary": "",
            "source": "Heise",
            "url": "https://example.test/robots",
            "topic": "technology",
            "region": "DE",
            "published_at": "2026-11-24T07:00:00Z",
        },
    ]

    # A topic that is not a NewsAPI category becomes a keyword search; "global" means no country.
    news.headlines(topic="sustainability", region="global", limit=1)
    assert api.requests[-1][1] == {"q": "sustainability", "pageSize": "1"}
    # Neither filter: NewsAPI refuses a bare request, so the client asks for general news.
    news.headlines()
    assert api.requests[-1][1] == {"category": "general", "pageSize": "10"}
    assert API_KEY not in repr(news)


def test_live_trending_counts_total_results_per_category(fake_api: tuple[FakeNewsApi, str]) -> None:
    api, base_url = fake_api
    topics = LiveNewsBackend(base_url, API_KEY).trending_topics(region="US", limit=2)
    assert topics == [{"topic": "business", "count": 70}, {"topic": "technology", "count": 38}]
    sent = [q for _, q, _ in api.requests]
    assert len(sent) == 7 and all(q["country"] == "us" and q["pageSize"] == "1" for q in sent)


def test_live_invalid_key_is_unauthorized(fake_api: tuple[FakeNewsApi, str]) -> None:
    _, base_url = fake_api
    with pytest.raises(NewsError) as err:
        LiveNewsBackend(base_url, "wrong-key").headlines(topic="business")
    assert err.value.code == "unauthorized"
    assert "apiKeyInvalid" in err.value.message and "401" in err.value.message
    assert "wrong-key" not in err.value.message
    assert err.value.retry_after_seconds is None


def test_live_rate_limit_carries_retry_after(fake_api: tuple[FakeNewsApi, str]) -> None:
    api, base_url = fake_api
    api.mode = "rate-limited"
    with pytest.raises(NewsError) as err:
        LiveNewsBackend(base_url, API_KEY).headlines(region="gb")
    assert err.value.code == "rate_limited"
    assert err.value.retry_after_seconds == 120.0
    assert err.value.to_dict()["error"] == "rate_limited"
    assert api.requests[-1][1] == {"country": "gb", "pageSize": "10"}


def test_live_unreachable_api_is_unavailable() -> None:
    # A port that was just free: nothing listens, so the connection is refused.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(NewsError) as err:
        LiveNewsBackend(f"http://127.0.0.1:{port}", API_KEY, timeout_seconds=2.0).headlines(topic="health")
    assert err.value.code == "unavailable"
    assert API_KEY not in err.value.message
