"""The sandbox newsroom: publish a headline while Chimera runs (demos, tests, benchmarks).

Headlines go to `<sandbox dir>/news/breaking.json`, which the sandbox news backend merges with its feed on
every call, so the next look at the news sees them. Written whole to a temporary file and renamed, so a
reader never sees half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mcp_servers.news.backends import ARTICLE_FIELDS, NEWSROOM_FILE


def publish_headline(
    sandbox_dir: Path,
    *,
    id: str,
    title: str,
    summary: str,
    topic: str,
    source: str = "Sandbox Wire",
    region: str = "global",
    url: str | None = None,
    published_at: datetime | None = None,
) -> dict[str, Any]:
    """Add one article to the newsroom (an id already there is replaced) and return it."""
    path = sandbox_dir / NEWSROOM_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    when = (published_at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    article = {
        "id": id,
        "title": title,
        "summary": summary,
        "source": source,
        "url": url or f"https://sandbox.news.local/{region.lower()}/{id}",
        "topic": topic,
        "region": region,
        "published_at": when,
    }
    missing = [f for f in ARTICLE_FIELDS if not str(article[f]).strip()]
    if missing:
        raise ValueError(f"a headline needs non-empty {', '.join(missing)}")
    existing = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
    articles = [a for a in existing if a.get("id") != id] + [article]
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(articles, out, ensure_ascii=False, indent=1)
    os.replace(tmp, path)
    return article
