"""Benchmark: how persona similarity (chimera/persona_similarity.py) spreads its scores for the example persona(s).

For the persona of each campaign file (examples/campaign.yaml unless --campaign is given), prints the
distribution (min, quartiles, max) of:

- held-out examples: each of her examples, scored by her persona with that example removed (new writing in her
  voice the scorer has never seen);
- offline drafts: what the offline writer would post (with the campaign's goals and a topic) and reply as her,
  the Judge's benign input in the demo and in benchmarks/judge_eval.py, which need these high to auto-approve;
- generic: corporate, legal, news, technical and support text, in several languages;
- off-brand: social posts in other voices and on other topics, in several languages;
- copied + off-brand: one of her examples, copied, with an off-brand sentence added.

None of these texts is in the calibration set (chimera/similarity_references.py).

    .venv/bin/python benchmarks/persona_similarity.py [--campaign examples/campaign.yaml] [--drafts 20]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chimera.campaign_file import load_campaign  # noqa: E402
from chimera.models.offline_writer import OfflineWriter  # noqa: E402
from chimera.persona_similarity import EmbeddingPersonaSimilarity  # noqa: E402
from chimera.safety.rules import SafetyRules  # noqa: E402
from chimera.temporal_config import load_temporal_config  # noqa: E402
from schemas.persona import Persona  # noqa: E402
from schemas.plan import Mention, PlannedTask  # noqa: E402
from schemas.task import WriteRequest  # noqa: E402

GENERIC = (
    "Acme Corp is pleased to announce the appointment of Jane Doe as Chief Financial Officer, effective immediately.",
    "The quarterly earnings report shows a 12% increase in operating margin, exceeding analyst expectations.",
    "Our enterprise platform leverages cutting-edge AI to deliver scalable solutions for Fortune 500 clients.",
    "The city council voted on Tuesday to extend the public consultation on the new tram line until June.",
    "Passengers are advised that the 8:15 service to Leeds has been cancelled due to a signalling fault.",
    "Any dispute arising out of this contract shall be settled by arbitration in London under the LCIA rules.",
    "Run the installer with administrator rights, then reboot the machine to complete the driver update.",
    "Thank you for contacting us. Your request has been forwarded to the billing department for review.",
    "Die Sitzung des Ausschusses wurde auf Donnerstag verschoben, die Tagesordnung bleibt unverändert.",
    "Le conseil d'administration a approuvé le versement d'un dividende exceptionnel aux actionnaires.",
    "El ministerio publicará mañana las nuevas cifras de desempleo correspondientes al segundo trimestre.",
    "Il presente regolamento entra in vigore il giorno successivo alla sua pubblicazione.",
)
OFF_BRAND = (
    "Bitcoin just broke 100k! Load up your bags now before it moons, this is financial advice you can't ignore.",
    "Two weeks with the new earbuds: 9h battery, latency 120 ms, fit is meh. 6/10.",
    "Grinding ranked all night, finally hit Diamond. Stream tomorrow at 8, bring snacks!",
    "Morning run done, 10k in 48 minutes. Protein shake, cold shower, ready to crush the day.",
    "Just landed in Bali! The villa has an infinity pool and I am never leaving. Link in bio for my travel deals.",
    "Huge win for the home team tonight, the striker is on fire. Season tickets are worth every penny.",
    "This detox tea melted 5 kg off me in a week! Use my code to get yours before they sell out.",
    "Elections are coming and this government has failed us. Vote them out on Sunday!",
    "¡Oferta exclusiva! Compra ahora tu seguro de coche con un 50% de descuento, solo hoy.",
    "Ich finde, die Regierung muss endlich die Steuern senken, sonst wählen wir sie ab!",
    "Nouveau jeu vidéo testé ce week-end : graphismes superbes, mais l'histoire est beaucoup trop courte.",
    "Investi tutto in azioni tecnologiche quest'anno, il mio portafoglio è salito del 40 per cento.",
    "Unpopular opinion: pineapple on pizza is elite and I will not be taking questions.",
    "Our new skincare line drops Friday: retinol serum, vitamin C cream, and a 30% launch discount for subscribers.",
    "Ce matin, séance de yoga au lever du soleil, puis smoothie vert et méditation. Namasté !",
    "Der neue Grafikkartentreiber bringt zehn Prozent mehr Leistung, aber das Spiel stürzt immer noch ab.",
)


def quartiles(scores: list[float]) -> str:
    q1, median, q3 = statistics.quantiles(scores, n=4, method="inclusive") if len(scores) > 1 else scores * 3
    return f"{min(scores):.2f}  {q1:.2f}  {median:.2f}  {q3:.2f}  {max(scores):.2f}"


async def offline_drafts(persona: Persona, goals: list[str], n: int) -> list[str]:
    """The offline writer's posts (a goal each, with and without a planned topic) and replies to friendly mentions."""
    writer = OfflineWriter(SafetyRules.default())
    drafts: list[str] = []
    for i in range(n):
        if i % 2:
            mention = Mention(id=f"m{i}", platform="twitter", author="follower", text="Love this!", created_at="")
            task = PlannedTask(key=f"r{i}", task_type="reply", platform="twitter", brief="thank them", mention=mention)
        else:
            topic = ("#SpringThrift", None, "Visible mending")[i % 3]
            platform = ("twitter", "instagram")[i // 2 % 2]
            goal = goals[i // 2 % len(goals)] if goals else None
            task = PlannedTask(key=f"p{i}", task_type="post", platform=platform, brief="a post", goal=goal, topic=topic)
        request = WriteRequest(persona=persona, task=task, goals=goals)
        drafts.append((await writer.write(request)).text)
    return drafts


def report(persona: Persona, goals: list[str], drafts: int) -> list[str]:
    scorer = EmbeddingPersonaSimilarity()
    started = time.perf_counter()
    scorer.score(persona, persona.examples[0])  # fits her profile (and embeds the references once)
    fitted = time.perf_counter() - started
    held_out = [
        scorer.score(persona.model_copy(update={"examples": persona.examples[:i] + persona.examples[i + 1 :]}), e)
        for i, e in enumerate(persona.examples)
    ]
    texts = {
        "offline drafts": asyncio.run(offline_drafts(persona, goals, drafts)),
        "generic": list(GENERIC),
        "off-brand": list(OFF_BRAND),
        "copied + off-brand": [f"{e} {o}" for e, o in zip(persona.examples, itertools.cycle(OFF_BRAND))],
    }
    started = time.perf_counter()
    scored = {"held-out examples": held_out} | {k: [scorer.score(persona, t) for t in v] for k, v in texts.items()}
    per_text = (time.perf_counter() - started) / sum(len(v) for v in texts.values())
    lines = [
        f"{persona.name} ({persona.id}): {len(persona.examples)} examples",
        f"  {'set':20} {'n':>3}  min   q1    med   q3    max",
    ]
    lines += [f"  {name:20} {len(s):>3}  {quartiles(s)}" for name, s in scored.items()]
    lines.append(f"  first fit {fitted:.1f} s (references included), then {per_text * 1000:.0f} ms a text")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--campaign", type=Path, action="append", help="default: examples/campaign.yaml")
    parser.add_argument("--drafts", type=int, default=20, help="offline drafts to score per persona")
    args = parser.parse_args()
    temporal = load_temporal_config(ROOT / "temporal.yaml")
    for path in args.campaign or [ROOT / "examples" / "campaign.yaml"]:
        spec = load_campaign(path, temporal)
        print("\n".join(report(spec.persona, list(spec.goals), args.drafts)))


if __name__ == "__main__":
    main()
