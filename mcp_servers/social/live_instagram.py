"""The live Instagram backend: the Instagram Graph API (content publishing, comment moderation), exactly once
through the ledger.

Publishing an image is two steps: POST /{ig-user-id}/media (image_url + caption) creates a container, and
POST /{ig-user-id}/media_publish publishes it. Graph fetches the image itself, so the media item needs a
`public_url`. Instagram offers no trends API: `trends()` answers an empty list. Post metrics read each media's
like_count and comments_count (GET /{ig-media-id}) and, best effort, its reach and shares insights.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2 as httpx

from mcp_servers.common import RateLimited, ToolError, json_object
from mcp_servers.media import MediaStore
from mcp_servers.social.backend import NotFound, Platform, iso, parse_time, post_metric
from mcp_servers.social.ledger import (
    CLOCK_SLACK_SECONDS,
    Attempt,
    OutcomeUnknown,
    Published,
    PublishLedger,
    adopt,
    post_record,
    publish_once,
    same_text,
)
from mcp_servers.social.live_http import DEFAULT_TIMEOUT_SECONDS, send
from mcp_servers.social.rules import (
    IG_MAX_CAPTION_CHARS,
    InvalidRequest,
    check_instagram_image,
    check_key,
    check_post_ids,
    check_text,
)

DEFAULT_BASE_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v21.0"
# Graph's rate-limit errors carry no Retry-After. Its usage windows roll over one hour, so a whole hour is the
# documented worst case; X-Business-Use-Case-Usage's estimated_time_to_regain_access (minutes) is preferred.
DEFAULT_RETRY_AFTER_SECONDS = 60 * 60.0
RATE_LIMIT_CODES = {4, 17, 32, 613}
INVALID_TOKEN_CODES = {102, 190}
MEDIA_FOR_COMMENTS = 10  # how many recent posts the comments feed reads
CONTAINER_POLLS = 10
MEDIA_METRICS_FIELDS = "like_count,comments_count,owner,username"
INSIGHT_METRICS = "reach,shares"
# A Graph object id is decimal; anything else is no media of this account's and costs no call.
_GRAPH_ID = re.compile(r"[0-9]{1,30}")
# Insights refused like this would be refused for every media of the request: stop asking.
_INSIGHTS_OFF = {"forbidden", "unauthorized", "rate_limited"}


class LiveInstagramBackend:
    platform: Platform = "instagram"

    def __init__(
        self,
        base_url: str,
        access_token: str,
        user_id: str,
        data_dir: Path,
        *,
        account: str | None = None,
        api_version: str = DEFAULT_API_VERSION,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        container_poll_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`account`: the username the IG user must have (checked before first use) and whose ledger it keeps;
        None only for the environment's unnamed single account."""
        if not access_token:
            raise ValueError("the live instagram backend needs an access token")
        if not user_id:
            raise ValueError("the live instagram backend needs the IG user id")
        self.account = account
        self.base_url = base_url.rstrip("/")
        self._token = access_token
        self._user_id = user_id
        self._version = api_version.strip("/")
        self._timeout_seconds = timeout_seconds
        self._poll_seconds = container_poll_seconds
        self._clock = clock
        self._sleep = sleep
        self._client = httpx.Client(base_url=f"{self.base_url}/{self._version}", timeout=timeout_seconds)
        self.media = MediaStore(data_dir)
        self.ledger = PublishLedger(data_dir, "instagram", account=account, clock=clock)
        self._username: str | None = None
        self._account_checked = account is None

    def __repr__(self) -> str:
        return f"LiveInstagramBackend(base_url={self.base_url!r}, user_id={self._user_id!r}, account={self.account!r})"

    # -- HTTP ------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        publishing: bool = False,
        params: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        what = f"Graph {method} {path}"
        # The token travels in the Authorization header, never in a URL that could end up in a log.
        response = send(
            self._client,
            method,
            path,
            publishing=publishing,
            what=what,
            params=params,
            data=data,
            headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json"},
        )
        payload = json_object(response)
        if 200 <= response.status_code < 300 and "error" not in payload:
            return payload
        if publishing and response.status_code >= 500:
            raise OutcomeUnknown(f"{what}: HTTP {response.status_code}")
        raise self._error(response, payload, what)

    def _error(self, response: httpx.Response, body: dict[str, Any], what: str) -> ToolError:
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        assert isinstance(error, dict)
        code, subcode = error.get("code"), error.get("error_subcode")
        message = (
            f"{what}: HTTP {response.status_code}: {error.get('message') or 'no error detail'}"
            f" (code {code}, subcode {subcode}, fbtrace_id {error.get('fbtrace_id')})"
        )[:600]
        if code in RATE_LIMIT_CODES or response.status_code == 429:
            return RateLimited(self._retry_after(response), message)
        if code in INVALID_TOKEN_CODES:
            return ToolError("unauthorized", message)
        if code == 10 or (isinstance(code, int) and 200 <= code <= 299):
            return ToolError("forbidden", message)
        if code == 9004:
            return ToolError("media_fetch_failed", message)  # Graph could not download image_url
        if code == 100 and subcode == 33:
            return NotFound(message)  # "Object with ID ... does not exist"
        if code == 100:
            return InvalidRequest("invalid_request", message)
        return ToolError("upstream_error", message)

    def _retry_after(self, response: httpx.Response) -> float:
        try:
            usage = json.loads(response.headers.get("X-Business-Use-Case-Usage", ""))
        except ValueError:
            return DEFAULT_RETRY_AFTER_SECONDS
        # {"<business id>": [{"type", "call_count", ..., "estimated_time_to_regain_access": minutes}]}
        minutes = [
            entry.get("estimated_time_to_regain_access")
            for entries in (usage.values() if isinstance(usage, dict) else [])
            if isinstance(entries, list)
            for entry in entries
            if isinstance(entry, dict)
        ]
        waits = [float(m) for m in minutes if isinstance(m, int | float) and not isinstance(m, bool) and m > 0]
        return max(waits) * 60.0 if waits else DEFAULT_RETRY_AFTER_SECONDS

    def _own_username(self) -> str:
        if self._username is None:
            self._username = str(self._call("GET", f"/{self._user_id}", params={"fields": "username"}).get("username"))
        return self._username

    def _check_account(self) -> None:
        """Credentials filed under the wrong name would post as someone else: refuse them."""
        if self._account_checked:
            return
        username = self._own_username().lower()
        if username != self.account:
            raise ToolError(
                "account_mismatch",
                f"the credentials of Instagram account @{self.account} are for IG user @{username}: fix the "
                f"secret platform/instagram/{self.account}",
            )
        self._account_checked = True

    # -- publishing -------------------------------------------------------------------------

    def post(self, text: str, idempotency_key: str, media_id: str | None = None) -> dict[str, Any]:
        check_key(idempotency_key)
        self._check_account()
        done = self.ledger.get(idempotency_key)
        if done is not None and done.post_id is not None:
            caption, image_url = text, ""  # a repeat answers from the ledger before any validation
        else:
            caption = check_text("instagram", text, IG_MAX_CAPTION_CHARS)
            if not media_id:
                raise InvalidRequest("media_required", "an Instagram post is an image: pass a media_id")
            item = check_instagram_image(self.media, media_id)
            if not item.public_url:
                raise InvalidRequest(
                    "media_not_public",
                    f"{media_id} has no public_url; Instagram fetches the image itself, so it must be reachable",
                )
            image_url = item.public_url
        return publish_once(
            self.ledger,
            idempotency_key,
            "post",
            None,
            caption,
            media_id,
            lease_seconds=self._timeout_seconds * (CONTAINER_POLLS + 4),
            send=lambda: self._publish_image(image_url, caption),
            search=self._search,
        )

    def _publish_image(self, image_url: str, caption: str) -> Published:
        # A container alone publishes nothing, so a lost answer here is harmless (not "outcome_unknown").
        container = self._call("POST", f"/{self._user_id}/media", data={"image_url": image_url, "caption": caption})
        creation_id = container.get("id")
        if not isinstance(creation_id, str):
            raise ToolError("upstream_error", "Graph created no media container id")
        self._wait_for_container(creation_id)
        published = self._call(
            "POST", f"/{self._user_id}/media_publish", publishing=True, data={"creation_id": creation_id}
        )
        media_id = published.get("id")
        if not isinstance(media_id, str):
            raise OutcomeUnknown("Graph media_publish answered without an id")
        return Published(media_id, self._permalink(media_id), iso(self._clock()))

    def _wait_for_container(self, creation_id: str) -> None:
        for _ in range(CONTAINER_POLLS):
            status = self._call("GET", f"/{creation_id}", params={"fields": "status_code"}).get("status_code")
            if status in ("FINISHED", None):  # None: the API version reports no status; publishing will tell
                return
            if status in ("ERROR", "EXPIRED"):
                raise InvalidRequest("media_invalid", f"Instagram could not process the image (container {status})")
            self._sleep(self._poll_seconds)
        raise ToolError("unavailable", f"media container {creation_id} was not ready in time", self._poll_seconds)

    def _permalink(self, media_id: str) -> str:
        try:
            return str(self._call("GET", f"/{media_id}", params={"fields": "permalink"}).get("permalink") or "")
        except ToolError:
            return ""  # published all the same; the id is what counts

    def reply(self, mention_id: str, text: str, idempotency_key: str) -> dict[str, Any]:
        check_key(idempotency_key)
        self._check_account()
        done = self.ledger.get(idempotency_key)
        message = text if done is not None and done.post_id else check_text("instagram", text, IG_MAX_CAPTION_CHARS)
        return publish_once(
            self.ledger,
            idempotency_key,
            "reply",
            mention_id,
            message,
            None,
            lease_seconds=self._timeout_seconds * 3,
            send=lambda: self._reply(mention_id, message),
            search=self._search,
        )

    def _reply(self, comment_id: str, message: str) -> Published:
        answer = self._call("POST", f"/{comment_id}/replies", publishing=True, data={"message": message})
        reply_id = answer.get("id")
        if not isinstance(reply_id, str):
            raise OutcomeUnknown("Graph replies answered without an id")
        # Comments have no permalink of their own.
        return Published(reply_id, "", iso(self._clock()))

    def _search(self, attempt: Attempt) -> list[Published]:
        """Own posts (or own replies under the comment) since the attempt started, with its text, oldest first."""
        since = attempt.started_at - CLOCK_SLACK_SECONDS
        if attempt.reply_to is None:
            payload = self._call(
                "GET", f"/{self._user_id}/media", params={"fields": "id,caption,timestamp,permalink", "limit": 25}
            )
            items, text_field = _items(payload.get("data")), "caption"
        else:
            me = self._own_username()
            payload = self._call("GET", f"/{attempt.reply_to}/replies", params={"fields": "id,text,username,timestamp"})
            items = [r for r in _items(payload.get("data")) if r.get("username") == me]
            text_field = "text"
        found: list[tuple[float, Published]] = []
        for item in items:
            at = parse_time(item.get("timestamp"))
            text = item.get(text_field)
            if not isinstance(item.get("id"), str) or not isinstance(text, str) or at is None or at < since:
                continue
            if same_text(text, attempt.text):
                found.append((at, Published(item["id"], str(item.get("permalink") or ""), iso(at))))
        return [p for _, p in sorted(found, key=lambda pair: pair[0])]

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
        try:
            account = self._own_username()
        except ToolError:
            account = ""  # only a label
        return post_record(attempt, "instagram", account)

    def recent_mentions(self, limit: int = 20, unreplied_only: bool = False) -> list[dict[str, Any]]:
        """Comments on the account's recent posts, newest first."""
        if limit <= 0:
            return []
        self._check_account()
        media = self._call(
            "GET",
            f"/{self._user_id}/media",
            params={"fields": "id,caption,timestamp,permalink", "limit": MEDIA_FOR_COMMENTS},
        )
        replied = self.ledger.replied_to()
        comments = []
        for item in _items(media.get("data")):
            if not isinstance(item.get("id"), str):
                continue
            page = self._call("GET", f"/{item['id']}/comments", params={"fields": "id,text,username,timestamp"})
            for c in _items(page.get("data")):
                if not isinstance(c.get("id"), str):
                    continue
                at = parse_time(c.get("timestamp"))
                comments.append(
                    {
                        "id": c["id"],
                        "platform": "instagram",
                        "author": str(c.get("username") or ""),
                        "text": str(c.get("text") or ""),
                        "created_at": iso(at) if at is not None else "",
                        "replied": c["id"] in replied,
                    }
                )
        comments.sort(key=lambda m: m["created_at"], reverse=True)
        if unreplied_only:
            comments = [c for c in comments if not c["replied"]]
        return comments[:limit]

    def profile_stats(self) -> dict[str, Any]:
        self._check_account()
        data = self._call("GET", f"/{self._user_id}", params={"fields": "username,followers_count,media_count"})
        return {
            "platform": "instagram",
            "account": str(data.get("username") or ""),
            "followers": int(data.get("followers_count") or 0),
            "post_count": int(data.get("media_count") or 0),
            # Graph does not count an account's replies; these are the replies published through Chimera.
            "reply_count": len(self.ledger.replied_to()),
        }

    def post_metrics(self, post_ids: list[str]) -> dict[str, Any]:
        """Per media: likes = like_count, replies = comments_count, and, best effort (a failure leaves them 0),
        impressions = the `reach` insight and reposts = `shares`. An unknown id, an object that is no media (a
        comment), or another IG user's media is missing."""
        ids = check_post_ids(post_ids)
        self._check_account()
        metrics = []
        missing = []
        insights = True
        for media_id in ids:
            counts = self._media_counts(media_id)
            if counts is None:
                missing.append(media_id)
                continue
            likes, comments = counts
            values: dict[str, int] = {}
            if insights:
                try:
                    values = self._insights(media_id)
                except ToolError as exc:
                    # Insights need instagram_manage_insights (and media newer than the account's conversion).
                    insights = exc.code not in _INSIGHTS_OFF
            metrics.append(
                post_metric(
                    media_id,
                    likes=likes,
                    replies=comments,
                    reposts=values.get("shares", 0),
                    impressions=values.get("reach", 0),
                    measured_at=iso(self._clock()),
                )
            )
        return {"metrics": metrics, "missing": missing}

    def _media_counts(self, media_id: str) -> tuple[int, int] | None:
        """(like_count, comments_count) of one of the account's media; None when it is none of them."""
        if not _GRAPH_ID.fullmatch(media_id):
            return None
        try:
            media = self._call("GET", f"/{media_id}", params={"fields": MEDIA_METRICS_FIELDS})
        except ToolError as exc:
            # not_found: no such object (code 100/33); invalid_request: an object without these fields (a comment).
            if exc.code in ("not_found", "invalid_request"):
                return None
            raise
        # Graph names the owner only to the app user who created the media, and the author's username otherwise.
        owner = media.get("owner")
        if isinstance(owner, dict) and owner.get("id") is not None:
            if str(owner["id"]) != self._user_id:
                return None
        elif media.get("username") is not None and str(media["username"]).lower() != self._own_username().lower():
            return None
        return _count(media.get("like_count")), _count(media.get("comments_count"))

    def _insights(self, media_id: str) -> dict[str, int]:
        """{metric name: lifetime value}; Graph answers `values: [{value}]`, newer versions `total_value: {value}`."""
        payload = self._call("GET", f"/{media_id}/insights", params={"metric": INSIGHT_METRICS})
        values: dict[str, int] = {}
        for item in _items(payload.get("data")):
            name = item.get("name")
            total = item.get("total_value")
            series = _items(item.get("values"))
            value = total.get("value") if isinstance(total, dict) else series[0].get("value") if series else None
            if isinstance(name, str):
                values[name] = _count(value)
        return values

    def trends(self, limit: int | None = None) -> list[dict[str, Any]]:
        # The Instagram Graph API has no trends endpoint (hashtag search needs a hashtag to look up).
        return []


def _items(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
