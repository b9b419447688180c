"""The live X (Twitter) backend: X API v2 with a user-context bearer token, exactly once through the ledger.

Endpoints: POST /2/tweets (post and reply), GET /2/users/me (own id, username, public_metrics),
GET /2/users/{id}/mentions, GET /2/users/{id}/tweets (the look-up of an attempt whose outcome is unknown),
GET /2/trends/by/woeid/{woeid} (an app-only endpoint: it uses CHIMERA_TWITTER_APP_BEARER_TOKEN when set),
GET /2/tweets?ids=...&tweet.fields=public_metrics,author_id (post metrics).
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx

from chimera.retry_after import retry_after_header
from mcp_servers.common import RateLimited, ToolError, json_object
from mcp_servers.social.backend import NotFound, Platform, iso, parse_time, post_metric
from mcp_servers.social.ledger import (
    CLOCK_SLACK_SECONDS,
    Attempt,
    MaybePublished,
    OutcomeUnknown,
    Published,
    PublishLedger,
    adopt,
    post_record,
    publish_once,
    same_text,
)
from mcp_servers.social.live_http import DEFAULT_TIMEOUT_SECONDS, send
from mcp_servers.social.rules import TWEET_MAX_CHARS, InvalidRequest, check_key, check_post_ids, check_text

DEFAULT_BASE_URL = "https://api.x.com"
WORLDWIDE_WOEID = 1
# X's rate-limit windows are 15 minutes; without reset headers, waiting one whole window is always enough.
DEFAULT_RETRY_AFTER_SECONDS = 15 * 60.0
MAX_TRENDS = 50
MENTIONS_PAGE = 100  # the API's max_results bound (5..100)
# A tweet id is a decimal snowflake; X refuses a whole GET /2/tweets that names anything else (400).
_TWEET_ID = re.compile(r"[0-9]{1,19}")


class LiveTwitterBackend:
    platform: Platform = "twitter"

    def __init__(
        self,
        base_url: str,
        access_token: str,
        data_dir: Path,
        *,
        account: str | None = None,
        app_bearer_token: str | None = None,
        woeid: int = WORLDWIDE_WOEID,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`account`: the handle the token must belong to (checked against /2/users/me before first use) and
        whose ledger it keeps; None only for the environment's unnamed single account."""
        if not access_token:
            raise ValueError("the live twitter backend needs a user access token")
        self.account = account
        self.base_url = base_url.rstrip("/")
        self._token = access_token
        self._app_token = app_bearer_token or access_token
        self._woeid = woeid
        self._timeout_seconds = timeout_seconds
        self._clock = clock
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout_seconds)
        self.ledger = PublishLedger(data_dir, "twitter", account=account, clock=clock)
        self._me: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"LiveTwitterBackend(base_url={self.base_url!r}, account={self.account!r})"

    # -- HTTP ------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        publishing: bool = False,
        token: str | None = None,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        what = f"X {method} {path}"
        response = send(
            self._client,
            method,
            path,
            publishing=publishing,
            what=what,
            params=params,
            json=body,
            headers={"Authorization": f"Bearer {token or self._token}", "Accept": "application/json"},
        )
        payload = json_object(response)
        if 200 <= response.status_code < 300:
            return payload
        if publishing and response.status_code >= 500:
            # The request arrived; whether X created the tweet before failing is unknown.
            raise OutcomeUnknown(f"{what}: HTTP {response.status_code}")
        raise self._error(response, payload, what)

    def _error(self, response: httpx.Response, body: dict[str, Any], what: str) -> ToolError:
        status = response.status_code
        detail = _detail(body)
        message = f"{what}: HTTP {status}: {detail}"[:600]
        if status == 429:
            return RateLimited(self._retry_after(response), message)
        if status == 401:
            return ToolError("unauthorized", message)
        lowered = detail.lower()
        if status == 403 and "duplicate content" in lowered:
            # X refuses the same text twice in a row; the first one may be ours (a lost answer).
            return MaybePublished("duplicate_content", message)
        if status == 403 and ("deleted or not visible" in lowered or "not visible to you" in lowered):
            return NotFound(message)
        if status == 403:
            return ToolError("forbidden", message)
        if status == 404:
            return NotFound(message)
        if status == 400:
            return InvalidRequest("text_too_long" if "too long" in lowered else "invalid_request", message)
        return ToolError("upstream_error", message)

    def _retry_after(self, response: httpx.Response) -> float:
        reset = response.headers.get("x-rate-limit-reset")
        if reset:
            try:
                return max(float(reset) - self._clock(), 1.0)
            except ValueError:
                pass
        waited = retry_after_header(response.headers.get("Retry-After"))
        return DEFAULT_RETRY_AFTER_SECONDS if waited is None else max(waited, 1.0)

    def _user(self) -> dict[str, Any]:
        if self._me is None:
            data = self._call("GET", "/2/users/me", params={"user.fields": "public_metrics"}).get("data")
            if not isinstance(data, dict) or not isinstance(data.get("id"), str):
                raise ToolError("upstream_error", "X /2/users/me answered without a user id")
            username = str(data.get("username") or "").lower()
            if self.account is not None and username != self.account:
                # Credentials filed under the wrong name would post as someone else: refuse them.
                raise ToolError(
                    "account_mismatch",
                    f"the credentials of X account @{self.account} belong to @{username or '?'}: fix the secret "
                    f"platform/twitter/{self.account}",
                )
            self._me = data
        return self._me

    def _check_account(self) -> None:
        if self.account is not None:
            self._user()

    # -- publishing -------------------------------------------------------------------------

    def post(self, text: str, idempotency_key: str, media_id: str | None = None) -> dict[str, Any]:
        if media_id is not None:
            raise InvalidRequest("media_not_supported", "the twitter server publishes text only")
        return self._publish(text, idempotency_key, reply_to=None)

    def reply(self, mention_id: str, text: str, idempotency_key: str) -> dict[str, Any]:
        return self._publish(text, idempotency_key, reply_to=mention_id)

    def _publish(self, text: str, idempotency_key: str, reply_to: str | None) -> dict[str, Any]:
        check_key(idempotency_key)
        self._check_account()
        done = self.ledger.get(idempotency_key)
        # A repeat of a published key answers before any validation, as the sandbox does.
        normalized = text if done is not None and done.post_id else check_text("twitter", text, TWEET_MAX_CHARS)
        body: dict[str, Any] = {"text": normalized}
        if reply_to is not None:
            body["reply"] = {"in_reply_to_tweet_id": reply_to}
        return publish_once(
            self.ledger,
            idempotency_key,
            "reply" if reply_to else "post",
            reply_to,
            normalized,
            None,
            lease_seconds=self._timeout_seconds * 3,
            send=lambda: self._create(body),
            search=self._search,
        )

    def _create(self, body: dict[str, Any]) -> Published:
        data = self._call("POST", "/2/tweets", publishing=True, body=body).get("data")
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            # X said yes but not what it created: treat as unknown, so the next attempt looks it up.
            raise OutcomeUnknown("X POST /2/tweets answered without data.id")
        return Published(data["id"], _tweet_url(data["id"]), iso(self._clock()))

    def _search(self, attempt: Attempt) -> list[Published]:
        """Own tweets since the attempt started with the attempt's text (and reply target), oldest first."""
        since = datetime.fromtimestamp(attempt.started_at - CLOCK_SLACK_SECONDS, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        payload = self._call(
            "GET",
            f"/2/users/{self._user()['id']}/tweets",
            params={"start_time": since, "max_results": 100, "tweet.fields": "created_at,referenced_tweets"},
        )
        found: list[tuple[float, Published]] = []
        for tweet in _items(payload.get("data")):
            tweet_id, text = tweet.get("id"), tweet.get("text")
            if not isinstance(tweet_id, str) or not isinstance(text, str) or not same_text(text, attempt.text):
                continue
            replied_to = [r.get("id") for r in _items(tweet.get("referenced_tweets")) if r.get("type") == "replied_to"]
            wanted = [] if attempt.reply_to is None else [attempt.reply_to]
            if replied_to != wanted:
                continue
            at = parse_time(tweet.get("created_at")) or attempt.started_at
            found.append((at, Published(tweet_id, _tweet_url(tweet_id), iso(at))))
        return [p for _, p in sorted(found, key=lambda item: item[0])]

    # -- reads ------------------------------------------------------------------------------

    def find_post(self, idempotency_key: str) -> dict[str, Any] | None:
        attempt = self.ledger.get(idempotency_key)
        if attempt is None:
            return None
        if attempt.post_id is None:
            adopted = adopt(self.ledger, attempt, self._search)
            if adopted is None:
                return None
            attempt = adopted
        return post_record(attempt, "twitter", self._username())

    def _username(self) -> str:
        try:
            return str(self._user().get("username") or "")
        except ToolError:
            return ""  # only a label: a post found in the ledger is still an answer

    def recent_mentions(self, limit: int = 20, unreplied_only: bool = False) -> list[dict[str, Any]]:
        if limit <= 0:
            return []
        payload = self._call(
            "GET",
            f"/2/users/{self._user()['id']}/mentions",
            params={
                "max_results": MENTIONS_PAGE if unreplied_only else min(max(limit, 5), MENTIONS_PAGE),
                "tweet.fields": "created_at,author_id",
                "expansions": "author_id",
            },
        )
        includes = payload.get("includes")
        users = _items(includes.get("users")) if isinstance(includes, dict) else []
        names = {u.get("id"): u.get("username") for u in users}
        replied = self.ledger.replied_to()
        mentions = []
        for tweet in _items(payload.get("data")):
            if not isinstance(tweet.get("id"), str):
                continue
            at = parse_time(tweet.get("created_at"))
            mentions.append(
                {
                    "id": tweet["id"],
                    "platform": "twitter",
                    "author": str(names.get(tweet.get("author_id")) or tweet.get("author_id") or ""),
                    "text": html.unescape(str(tweet.get("text") or "")),
                    "created_at": iso(at) if at is not None else "",
                    "replied": tweet["id"] in replied,
                }
            )
        mentions.sort(key=lambda m: m["created_at"], reverse=True)
        if unreplied_only:
            mentions = [m for m in mentions if not m["replied"]]
        return mentions[:limit]

    def profile_stats(self) -> dict[str, Any]:
        self._check_account()
        data = self._call("GET", "/2/users/me", params={"user.fields": "public_metrics"}).get("data")
        data = data if isinstance(data, dict) else {}
        metrics = data.get("public_metrics") if isinstance(data.get("public_metrics"), dict) else {}
        assert isinstance(metrics, dict)
        return {
            "platform": "twitter",
            "account": str(data.get("username") or ""),
            "followers": int(metrics.get("followers_count") or 0),
            "post_count": int(metrics.get("tweet_count") or 0),
            # X does not count replies apart; these are the replies published through Chimera.
            "reply_count": len(self.ledger.replied_to()),
        }

    def post_metrics(self, post_ids: list[str]) -> dict[str, Any]:
        """public_metrics of the account's own tweets, in one GET /2/tweets. Reposts are retweets + quotes. An id
        X does not answer in `data` (its `errors`: not found, not authorized), or a tweet of another author, is
        missing."""
        ids = check_post_ids(post_ids)
        me = self._user()["id"]  # also checks the token is the account's
        asked = [i for i in ids if _TWEET_ID.fullmatch(i)]
        found: dict[str, dict[str, Any]] = {}
        if asked:
            payload = self._call(
                "GET", "/2/tweets", params={"ids": ",".join(asked), "tweet.fields": "public_metrics,author_id"}
            )
            for tweet in _items(payload.get("data")):
                counts = tweet.get("public_metrics")
                if tweet.get("id") in asked and tweet.get("author_id") == me and isinstance(counts, dict):
                    found[tweet["id"]] = counts
        measured_at = iso(self._clock())
        metrics = [
            post_metric(
                post_id,
                likes=_count(found[post_id], "like_count"),
                replies=_count(found[post_id], "reply_count"),
                reposts=_count(found[post_id], "retweet_count") + _count(found[post_id], "quote_count"),
                impressions=_count(found[post_id], "impression_count"),
                measured_at=measured_at,
            )
            for post_id in ids
            if post_id in found
        ]
        return {"metrics": metrics, "missing": [i for i in ids if i not in found]}

    def trends(self, limit: int | None = None) -> list[dict[str, Any]]:
        count = min(limit or 20, MAX_TRENDS)
        payload = self._call(
            "GET",
            f"/2/trends/by/woeid/{self._woeid}",
            token=self._app_token,
            params={"max_trends": count, "trend.fields": "trend_name,tweet_count"},
        )
        trends = [
            {"platform": "twitter", "topic": t["trend_name"], "volume": int(t.get("tweet_count") or 0)}
            for t in _items(payload.get("data"))
            if isinstance(t.get("trend_name"), str)
        ]
        trends.sort(key=lambda t: -t["volume"])  # stable: X's own order among equal counts
        return trends[:count]


def _items(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _count(values: dict[str, Any], key: str) -> int:
    value = values.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _tweet_url(tweet_id: str) -> str:
    # Resolves without the author's handle.
    return f"https://x.com/i/web/status/{tweet_id}"


def _detail(body: dict[str, Any]) -> str:
    """X v2 problem details: {"title", "detail", "type", "status"} or {"errors": [{"message"}]}."""
    parts = [str(body[k]) for k in ("title", "detail") if body.get(k)]
    parts += [str(e.get("message")) for e in _items(body.get("errors")) if e.get("message")]
    return "; ".join(parts) or "no error detail"
