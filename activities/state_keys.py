"""The versioned state keys a task reads and writes: what optimistic concurrency compares."""

from __future__ import annotations

import re

from schemas.plan import PlannedTask

# A conversation key's version counts the replies committed to that mention (by any campaign of the tenant).
CONVERSATION = "conversation:"


def state_keys(campaign_id: str, task: PlannedTask) -> list[str]:
    """The versioned state a task depends on and changes: its conversation, or its topic slot.

    Two replies to one mention, or two posts on one topic, conflict; unrelated tasks never do.
    """
    if task.mention is not None:
        return [f"{CONVERSATION}{task.platform}:{task.mention.id}"]
    subject = task.topic or task.goal or task.key
    slug = re.sub(r"[^a-z0-9]+", "-", subject.lower()).strip("-")[:60] or task.key
    return [f"topic:{campaign_id}:{task.platform}:{slug}"]
