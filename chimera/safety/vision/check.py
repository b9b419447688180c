"""The vision check of a draft's attached images, offline and (when a vision model is configured) by the model.

`VisionCheck.check_input(JudgeInput)` is what the judge calls; `VisionCheck.check(...)` takes the parts. Every
attached media id is read from the media store (a missing one is high-risk), each image goes through the offline
checks (chimera/safety/vision/offline.py) and, unless those already reject it, through the vision model
(chimera/safety/vision/review.py) with its character reference (chimera/safety/vision/media.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from chimera.models.base import CallRecord, ModelProvider
from chimera.models.chat import ModelCallError
from chimera.safety.rules import SafetyRules
from chimera.safety.vision.media import (
    AttachedImage,
    CharacterReference,
    character_reference,
    load_media,
)
from chimera.safety.vision.offline import ImageChecks, ImageFindings
from chimera.safety.vision.review import ImageReview, VisionReviewer
from mcp_servers.media import MediaStore
from schemas.persona import Persona
from schemas.policy import SafetyFlag
from schemas.task import JudgeInput

# Posts that are an image: an Instagram feed post (activities/content.py PUBLISH_TOOLS: its `media_id`
# argument; the platform refuses the post without one, "media_required").
IMAGE_POSTS = ("instagram",)


@dataclass(frozen=True)
class VisionReport:
    """What the vision check adds to a verdict.

    `flags` join the judge's; `reasons` join its reasons (a model that was unavailable is said here, never
    counted as an approval); `texts` is the text the model read in the images (untrusted, for more text checks);
    `calls` are the vision model's calls, to be kept against the task (their spend is the task's); `retry` is
    set when the provider was busy on an attempt that may still retry: the activity raises it, to be retried."""

    flags: list[SafetyFlag] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    calls: list[CallRecord] = field(default_factory=list)
    retry: ModelCallError | None = None
    model_reviewed: bool = False  # every checkable image was reviewed by the vision model


class VisionCheck:
    """The vision check, on the media store at `store` (`MediaStore(settings.sandbox_dir)`).

    `model`: the provider whose vision tier reviews images; None when no vision model is configured (offline).
    `rules`: the draft's safety rules, also run on the text the model reads in an image.
    `require_model`: a campaign that never publishes an image no model has seen sets it: without a model review
    an image is then a low-risk flag (`vision-review-unavailable`), and goes to a human."""

    def __init__(
        self,
        store: MediaStore,
        model: ModelProvider | None = None,
        rules: SafetyRules | None = None,
        checks: ImageChecks | None = None,
        *,
        require_model: bool = False,
    ) -> None:
        self._store = store
        self._reviewer = VisionReviewer(model, rules) if model is not None else None
        self._checks = checks or ImageChecks()
        self._require_model = require_model

    async def check_input(
        self, inp: JudgeInput, attempt: int = 1, *, persona_reference: str | None = None
    ) -> VisionReport:
        """The vision check of a judge input's draft: its media_ids, platform and caption, the campaign's models."""
        result, task = inp.result, inp.task
        return await self.check(
            key=f"{inp.ref.task_id}/vision",
            persona=inp.persona,
            platform=result.platform,
            media_ids=result.media_ids,
            caption=result.text,
            image_required=task.task_type == "post" and task.mention is None and result.platform in IMAGE_POSTS,
            persona_reference=persona_reference,
            models=inp.models,
            attempt=attempt,
        )

    async def check(
        self,
        *,
        key: str,
        persona: Persona,
        platform: str,
        media_ids: Sequence[str],
        caption: str = "",
        image_required: bool = False,
        persona_reference: str | None = None,
        models: dict[str, Any] | None = None,
        attempt: int = 1,
    ) -> VisionReport:
        """Check every attached image. `key` files the model's calls (one call per image, `key/<media_id>`)."""
        if not media_ids:
            if image_required:
                flag = SafetyFlag(
                    rule="image-missing",
                    severity="high",
                    where="output",
                    detail=f"a {platform} post is an image and the draft attaches none",
                )
                return VisionReport(flags=[flag], reasons=[f"vision: {flag.detail}"])
            return VisionReport()
        offline = await asyncio.to_thread(self._offline, media_ids, platform, persona_reference)
        reviews = await self._reviews(offline.checked, key, persona, caption, models, attempt)
        return _combined(offline, reviews, self._reviewer is not None, self._require_model)

    def _offline(self, media_ids: Sequence[str], platform: str, persona_reference: str | None) -> _Offline:
        loaded = load_media(self._store, media_ids)
        checked: list[_Checked] = []
        for image in loaded.images:
            lookup = character_reference(self._store, image.item, persona_reference)
            reference = lookup.reference
            findings = self._checks.check(image.data, image.item, platform, reference.data if reference else None)
            if reference is not None and findings.character_distance is None:
                reference = None  # the image or the reference could not be read: the model is not shown it
            notes = list(findings.reasons)
            if findings.decoded:
                notes.insert(1, lookup.reason)  # what it is, what it was compared with, how far it is
            checked.append(_Checked(image, reference, findings, lookup.flags + findings.flags, notes))
        return _Offline(loaded.flags, checked)

    async def _reviews(
        self,
        checked: Sequence[_Checked],
        key: str,
        persona: Persona,
        caption: str,
        models: dict[str, Any] | None,
        attempt: int,
    ) -> list[ImageReview | None]:
        """The model's review of each image the offline checks do not already reject (None: not sent). After a
        busy provider the rest are left for the retried attempt."""
        reviews: list[ImageReview | None] = []
        for c in checked:
            if self._reviewer is None or not c.sendable or any(r is not None and r.retry for r in reviews):
                reviews.append(None)
                continue
            review = await self._reviewer.review(
                c.image,
                c.reference,
                persona=persona,
                key=f"{key}/{c.image.media_id}",
                caption=caption,
                models=models,
                attempt=attempt,
            )
            reviews.append(review)
        return reviews


@dataclass(frozen=True)
class _Checked:
    image: AttachedImage
    reference: CharacterReference | None
    findings: ImageFindings
    flags: list[SafetyFlag]  # the offline checks' and the reference lookup's
    notes: list[str]

    @property
    def sendable(self) -> bool:
        """Shown to the model only when it decoded and nothing already rejects it (no spend on a lost cause)."""
        return self.findings.decoded and not any(f.severity == "high" for f in self.flags)


@dataclass(frozen=True)
class _Offline:
    missing: list[SafetyFlag]
    checked: list[_Checked]


def _combined(
    offline: _Offline, reviews: Sequence[ImageReview | None], has_model: bool, require_model: bool
) -> VisionReport:
    """One reason line per image: what it is, what it was compared with, what the model said (or why not)."""
    flags = list(offline.missing)
    reasons = [f"vision: {f.detail}" for f in offline.missing]
    texts: list[str] = []
    calls: list[CallRecord] = []
    retry: ModelCallError | None = None
    reviewed_all = bool(offline.checked)
    for c, review in zip(offline.checked, reviews, strict=True):
        flags += c.flags
        notes = list(c.notes)
        reviewed = review is not None and review.reviewed
        reviewed_all = reviewed_all and reviewed
        if review is not None:
            calls += review.calls
            if review.retry is not None:
                retry = review.retry
            flags += review.flags
            texts += review.texts
        if review is not None and review.reason:
            notes.append(review.reason)
        elif not has_model:
            notes.append("no vision model is configured, the offline checks decided alone")
        elif not c.sendable:
            notes.append("not shown to the vision model: the offline checks already reject it")
        elif review is None or review.retry is not None:
            notes.append("vision model busy: the review is retried with the activity")
        if require_model and c.sendable and not reviewed and not (review is not None and review.flags):
            flags.append(_unreviewed(c.image.media_id))
        reasons.append(f"vision {c.image.media_id}: " + "; ".join(notes))
    return VisionReport(flags, reasons, texts, calls, retry, model_reviewed=reviewed_all)


def _unreviewed(media_id: str) -> SafetyFlag:
    detail = f"{media_id} was not reviewed by a vision model, and the campaign requires a model review"
    return SafetyFlag(rule="vision-review-unavailable", severity="low", where="output", detail=detail)
