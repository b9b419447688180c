"""The offline model's writer: a draft assembled from the persona's own sentences, questions and hashtags.

Every choice is seeded from a hash of the request (no clock, no unseeded randomness), so the same request always
gets the same draft, which also keeps Temporal activity retries and replays boring.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass

from pydantic import BaseModel

from chimera.models.base import ToolRunner, ToolUseError
from chimera.models.callback import callback_line
from chimera.models.offline_common import hostile_rules, shorten, usage
from chimera.safety.rules import SafetyRules
from schemas.memory import WritingMemory, said_of
from schemas.persona import Persona
from schemas.plan import Mention, PlannedTask
from schemas.task import Draft, WriteRequest

PLATFORM_LIMITS = {"twitter": 280, "instagram": 2200}
DEFAULT_LIMIT = 280  # an unknown platform gets the strictest limit
# model_probability: how sure the template model is that the draft does what the task asked.
P_OWN_MATERIAL = 0.96  # a post or reply assembled from her own sentences and hashtags
P_THIN_MATERIAL = 0.88  # she has fewer than two usable sentences, so the draft leans on generic templates
P_REPLY = 0.93  # a reply says less of what she would say than a post
P_CAUTIOUS = 0.80  # a deflection to a hostile mention, or a brief asking for what templates cannot express
# The tools it knows how to use (by the names Chimera's servers give them).
NEWS_TOPICS_TOOL = "trending_topics"
IMAGE_TOOL = "generate_image"

# Briefs asking for these cannot be honoured by templates (no media, links, data or formats).
_UNSUPPORTED = re.compile(
    r"\b(?:thread|poll|video|reel|image|photo|carousel|link|url|statistics?|stats|quote|giveaway|livestream|"
    r"translat\w*)\b",
    re.IGNORECASE,
)
_HASHTAG = re.compile(r"(?<!\w)#\w+")
_AD = re.compile(r"(?<!\w)#(?:ad|sponsored|paidpartnership)\b|\bsponsored\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_TOPIC_LINES = (
    "Seeing {topic} everywhere today.",
    "{topic} is trending, and I have thoughts.",
    "Everyone is talking about {topic} today.",
)
# Goals are usually imperative ("Grow the community"): these read well with imperatives and noun phrases.
_GOAL_LINES = ("This week's mission: {goal}.", "On my list this week: {goal}.", "The plan for this week: {goal}.")
# A sentence with one of these in its first words leans on the sentence before it ("Blend them..."), so it cannot
# stand alone in a collage.
_LEANING = frozenset({"it", "its", "it's", "they", "them", "this", "that", "these", "those", "he", "she", "and", "but"})
_THANKS = ("Thank you so much for this!", "Love hearing from you!", "So glad you stopped by!")
_AGAIN = ("Good to hear from you again!", "Lovely to see you back!", "You again, hello!")
DEFLECTION = "I appreciate your message, but I can't help with that."


class OfflineWriter:
    """Persona-built drafts, with a model_probability fixed by what the templates could do."""

    def __init__(self, rules: SafetyRules) -> None:
        # The rules spot hostile mentions, which get the DEFLECTION line instead of a thank-you.
        self._rules = rules

    async def write(self, request: WriteRequest, tools: ToolRunner | None = None) -> Draft:
        """A draft assembled from her example sentences, questions and hashtags plus the task's topic and goal.

        The mention of a reply never reaches the text: a reply is "@author", a thank-you (or, for a mention the
        safety rules flag as injection or abuse, the DEFLECTION line), one of her own questions (or short
        statements) and her first hashtag.

        model_probability is fixed by what the template could do, never by chance:
        P_OWN_MATERIAL 0.96 for a post built from her own material (P_THIN_MATERIAL 0.88 when she has fewer
        than two usable sentences), P_REPLY 0.93 for a reply, P_CAUTIOUS 0.80 for a deflection of a hostile
        mention or when the brief asks for what templates cannot express (a thread, poll, link, image, ...).

        Tools, when offered: a post without a planned topic takes the top news topic (`trending_topics`), and an
        Instagram post gets an image (`generate_image`, keyed by the task, so a retry makes no second image); the
        brief's "image" or "photo" is then something it can do. A failed image call fails the draft
        (ToolUseError), since an Instagram post needs an image.
        """
        task, persona = request.task, request.persona
        media_ids: list[str] = []
        if tools is not None and task.task_type == "post":
            task = await _with_news_topic(task, tools)
            if task.platform == "instagram" and tools.has(IMAGE_TOOL):
                media_ids.append(await _image_for(request, task, tools))
        rng = random.Random(_seed(request))
        material = _Material.of(persona)
        limit = PLATFORM_LIMITS.get(task.platform, DEFAULT_LIMIT)
        probability = P_OWN_MATERIAL if material.rich else P_THIN_MATERIAL
        cited: list[str] = []
        if task.task_type == "reply" and task.mention is not None:
            hostile = bool(hostile_rules(self._rules, persona, task.mention))
            opening, cited = self._opening(persona, task.mention, request.memory, rng, hostile)
            text = _reply_text(task.mention, material, rng, opening, limit)
            probability = P_CAUTIOUS if hostile else min(probability, P_REPLY)
        else:
            text = _post_text(task, material.unlike(request.memory), rng, limit)
        unsupported = _UNSUPPORTED.findall(task.brief)
        if media_ids:
            unsupported = [w for w in unsupported if w.lower() not in ("image", "photo")]
        if unsupported:
            probability = min(probability, P_CAUTIOUS)
        return Draft(text=text, model_probability=probability, usage=usage(text), media_ids=media_ids, memory_ids=cited)

    def _opening(
        self, persona: Persona, mention: Mention, memory: WritingMemory, rng: random.Random, hostile: bool
    ) -> tuple[str, list[str]]:
        """How a reply begins, and the memories it cites: a deflection for a hostile mention; for an author the
        agent talked with before, a line that refers back to the exchange the mention follows up (never to
        one the safety rules read as hostile); else a thank-you."""
        if hostile:
            return DEFLECTION, []
        related = memory.related()
        if related is not None:
            earlier = said_of(related.text)
            if not any(f.where == "input" for f in self._rules.evaluate(persona, "", [earlier])):
                line = callback_line(earlier, mention.text)
                if line:
                    return f"{rng.choice(_AGAIN)} {line}", [related.id]
        if memory.conversation:
            return rng.choice(_AGAIN), []
        return rng.choice(_THANKS), []


@dataclass(frozen=True)
class _Material:
    """Her sentences, split from her examples (hashtags removed), sorted by the job they can do in a draft."""

    openers: tuple[str, ...]  # first sentences of her examples: they set their own context
    middles: tuple[str, ...]  # later statements that do not lean on a previous sentence ("Blend them...")
    questions: tuple[str, ...]  # her questions to the reader, to close with
    hashtags: tuple[str, ...]
    tone: str

    @property
    def rich(self) -> bool:
        return len(self.openers) + len(self.middles) + len(self.questions) >= 2

    def unlike(self, memory: WritingMemory) -> _Material:
        """Her sentences least used by her posts within the repeat window: those never used, else those whose
        last use is the oldest (the posts come newest first)."""
        posts = [p.text.casefold() for p in memory.recent_posts]
        if not posts:
            return self

        def last_use(sentence: str) -> int:
            """How many posts ago it was last used; len(posts) + 1 when never."""
            s = sentence.casefold()
            return next((i for i, text in enumerate(posts) if s in text), len(posts) + 1)

        def fresh(items: tuple[str, ...]) -> tuple[str, ...]:
            if not items:
                return items
            oldest = max(last_use(s) for s in items)
            return tuple(s for s in items if last_use(s) == oldest)

        openers, middles = fresh(self.openers), fresh(self.middles)
        return _Material(openers, middles, fresh(self.questions), self.hashtags, self.tone)

    @classmethod
    def of(cls, persona: Persona) -> _Material:
        openers: list[str] = []
        middles: list[str] = []
        questions: list[str] = []
        own_tags: list[str] = []
        for example in persona.examples:
            if _AD.search(example):
                continue  # a sponsored post's sentences would reappear without their disclosure
            own_tags += _HASHTAG.findall(example)
            sentences = _SENTENCE_END.split(" ".join(_HASHTAG.sub(" ", example).split()))
            for i, sentence in enumerate(s for s in sentences if len(s.split()) >= 3):
                if sentence.endswith("?"):
                    questions.append(sentence)
                elif i == 0:
                    openers.append(sentence)
                elif not {w.lower().strip(",.:;") for w in sentence.split()[:3]} & _LEANING:
                    middles.append(sentence)
        to_reader = [q for q in questions if re.search(r"\byou", q, re.IGNORECASE)]
        # SOUL.md files may list hashtags with or without the '#'
        tags = [t if t.startswith("#") else f"#{t}" for t in (h.strip() for h in persona.hashtags) if t.strip("#")]
        tags = tags or own_tags
        return cls(
            openers=tuple(dict.fromkeys(openers or middles)),
            middles=tuple(dict.fromkeys(middles)),
            questions=tuple(dict.fromkeys(to_reader or questions)),
            hashtags=tuple(dict.fromkeys(tags)),
            tone=persona.tone_words[0] if persona.tone_words else "simple",
        )


def _post_text(task: PlannedTask, material: _Material, rng: random.Random, limit: int) -> str:
    opener = rng.choice(material.openers) if material.openers else f"Keeping it {material.tone} today."
    middles = [m for m in material.middles if m != opener]
    rng.shuffle(middles)
    question = rng.choice(material.questions) if material.questions else None
    topic_line = rng.choice(_TOPIC_LINES).format(topic=shorten(task.topic, 60)) if task.topic else None
    goal_line = _goal_line(task.goal, rng)
    tags = list(material.hashtags)
    if task.platform == "instagram":
        body = " ".join(p for p in [topic_line, opener, *middles[:2], goal_line] if p)
        return _clip("\n\n".join(p for p in [body, question, " ".join(tags)] if p), limit)
    # Short platforms: drop the least essential pieces until the draft fits. The topic always stays, so the
    # judge sees exactly what was planned.
    extra_tags, closing, middle = tags[1:], [question] if question else [], middles[:1]
    optional = [extra_tags, middle, closing]  # emptied in this order
    while True:
        pieces = [topic_line, opener, *middle, goal_line, *closing, " ".join(tags[:1] + extra_tags)]
        text = " ".join(p for p in pieces if p)
        if len(text) <= limit or not any(optional):
            return _clip(text, limit)
        _drop_first(optional)


def _drop_first(optional: list[list[str]]) -> None:
    for group in optional:
        if group:
            group.clear()
            return


def _goal_line(goal: str | None, rng: random.Random) -> str | None:
    if not goal:
        return None
    goal = goal.strip().rstrip(".!")
    if goal[:1].isupper() and not goal[1:2].isupper():  # "Grow the community" -> "grow the community"
        goal = goal[0].lower() + goal[1:]
    return rng.choice(_GOAL_LINES).format(goal=shorten(goal, 120))


def _reply_text(mention: Mention, material: _Material, rng: random.Random, first: str, limit: int) -> str:
    # The mention's text never reaches the reply: nothing it says can be repeated or obeyed.
    handle = re.sub(r"[^A-Za-z0-9_.]", "", mention.author)[:30].strip(".")
    greeting = f"@{handle}" if handle else "Hi there!"
    # Close in her words: one of her questions, else one of her short statements, and her first hashtag.
    short = [s for s in material.openers + material.middles if len(s) <= 120]
    closing = rng.choice(material.questions or tuple(short)) if (material.questions or short) else None
    tag = material.hashtags[0] if material.hashtags else None
    for pieces in ([greeting, first, closing, tag], [greeting, first]):
        text = " ".join(p for p in pieces if p)
        if len(text) <= limit:
            return text
    return _clip(text, limit)


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip(" ,;:") + "…"


async def _with_news_topic(task: PlannedTask, tools: ToolRunner) -> PlannedTask:
    """The task, with the top news topic when the plan gave it none and news is available."""
    if task.topic or not tools.has(NEWS_TOPICS_TOOL):
        return task
    try:
        found = await tools.call(NEWS_TOPICS_TOOL, {"limit": 3})
    except ToolUseError:
        return task  # no news only means no topic line
    topics = [t.get("topic") for t in found.get("topics", []) if isinstance(t, dict)]
    first = next((t for t in topics if isinstance(t, str) and t.strip()), None)
    return task if first is None else task.model_copy(update={"topic": shorten(first, 60)})


async def _image_for(request: WriteRequest, task: PlannedTask, tools: ToolRunner) -> str:
    persona = request.persona
    subject = task.topic or task.goal or persona.bio or persona.name
    style = ", ".join(persona.tone_words[:3]) or "natural light"
    prompt = shorten(f"{persona.name}, {subject}. Style: {style}. Photo for Instagram, no text.", 400)
    result = await tools.call(
        IMAGE_TOOL, {"prompt": prompt, "idempotency_key": request.task_id or task.key, "aspect_ratio": "4x5"}
    )
    media_id = result.get("media_id")
    if not isinstance(media_id, str) or not media_id:
        raise ToolUseError(f"{IMAGE_TOOL} returned no media_id")
    return media_id


def _seed(request: BaseModel) -> int:
    return int(hashlib.sha256(request.model_dump_json().encode()).hexdigest()[:16], 16)
