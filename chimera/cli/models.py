"""`chimera models`: the model tiers as configured, and a one-call check of every configured model (specs/cli.md).

No Temporal and no database: the catalog comes from the settings (CHIMERA_MODEL_CATALOG, CHIMERA_MODEL_TIERS,
CHIMERA_MODEL_PRICES), the credentials from the vendors' own variables. The SDKs (anthropic, google-genai) load
only when a command runs, so CLI start-up stays fast. Credentials are named (the variable), never printed.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from pydantic import BaseModel
from rich.markup import escape
from rich.table import Table

from chimera.cli import render
from chimera.cli.render import JsonFlag
from chimera.settings import Settings
from schemas.models import TIER_NAMES, ModelChoice, ProviderName, TierName, TierSettings, TokenUsage

if TYPE_CHECKING:  # the catalog and the SDK adapters load only when a command runs
    from chimera.models.catalog import ModelCatalog, PriceTable
    from chimera.models.chat import ChatClient

app = typer.Typer(help="The model tiers: list them with prices, check that each model answers.", no_args_is_help=True)

CHECK_SYSTEM = "You are a connectivity check for Chimera. Answer with the single word asked for."
CHECK_PROMPT = "Reply with OK."
CHECK_MAX_TOKENS = 16


# --- shared ----------------------------------------------------------------------------------------


class Credential(BaseModel):
    present: bool
    source: str  # the variable's name (or "NAME (unset)"), never its value


def _catalog(settings: Settings) -> ModelCatalog:
    from chimera.models.factory import load_catalog

    try:
        return load_catalog(settings)
    except ValueError as exc:  # CatalogError, a bad tier override, a validation error
        render.fail(f"model catalog: {exc}", render.EXIT_USAGE)


def _settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:  # e.g. CHIMERA_MODEL_TIERS that is not JSON
        render.fail(f"settings: {exc}", render.EXIT_USAGE)


def _credentials(chats: dict[ProviderName, ChatClient]) -> dict[str, Credential]:
    return {name: Credential(present=c.has_credentials(), source=c.credential_source()) for name, c in chats.items()}


def _to_set(source: str) -> str:
    """What to set for a provider without credentials: "GEMINI_API_KEY (unset)" -> "GEMINI_API_KEY"."""
    return source.removesuffix(" (unset)")


def _today() -> date:
    return datetime.now(UTC).date()


# --- chimera models list ---------------------------------------------------------------------------


class PriceView(BaseModel):
    basis: Literal["price_table", "seed_estimate"]
    input_per_mtok: float | None = None
    output_per_mtok: float | None = None
    cached_input_per_mtok: float | None = None  # cache reads (the input price when the table names none)
    effective_from: date | None = None
    source: str | None = None
    request_usd: float | None = None  # seed_estimate: what each request is charged


class ModelView(BaseModel):
    provider: ProviderName
    model: str
    price: PriceView


class TierView(BaseModel):
    tier: TierName
    primary: ModelView
    fallback: ModelView | None
    max_tokens: int
    effort: str | None
    temperature: float | None
    logprobs: bool
    timeout_seconds: float
    primary_attempts: int


class ModelsList(BaseModel):
    mode: Literal["offline", "live"]
    model_provider: str  # the setting (auto, offline, live) the mode was resolved from
    day: date  # the day whose prices are shown (UTC)
    credentials: dict[str, Credential]
    tiers: list[TierView]


def _price(table: PriceTable, seed: dict[str, float], tier: str, choice: ModelChoice, day: date) -> PriceView:
    price = table.price_on(choice.provider, choice.model, day)
    if price is None:
        return PriceView(basis="seed_estimate", request_usd=seed.get(tier, 0.0))
    cached = price.cached_input_per_mtok if price.cached_input_per_mtok is not None else price.input_per_mtok
    return PriceView(
        basis="price_table",
        input_per_mtok=price.input_per_mtok,
        output_per_mtok=price.output_per_mtok,
        cached_input_per_mtok=cached,
        effective_from=price.effective_from,
        source=price.source,
    )


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:.6f}".rstrip("0").rstrip(".")


def _price_text(price: PriceView) -> str:
    if price.basis == "seed_estimate":
        return f"seed estimate {_usd(price.request_usd)}/request"
    return (
        f"{_usd(price.input_per_mtok)} in / {_usd(price.output_per_mtok)} out / "
        f"{_usd(price.cached_input_per_mtok)} cached per MTok\nsince {price.effective_from}"
    )


def _model_cell(view: ModelView | None) -> str:
    if view is None:
        return "[dim]none[/]"
    return f"{escape(view.provider)}:{escape(view.model)}\n[dim]{escape(_price_text(view.price))}[/]"


@app.command("list")
def list_models(json_: JsonFlag = False) -> None:
    """Every tier: its models, limits and today's prices; which credentials are set; offline or live."""
    from chimera.models.factory import chat_clients, resolve_mode

    settings = _settings()
    catalog = _catalog(settings)
    chats = chat_clients()
    day = _today()
    table, seed = catalog.price_table(), catalog.seed_request_usd
    tiers = []
    for name in TIER_NAMES:
        tier = catalog.tiers.tier(name)
        tiers.append(
            TierView(
                tier=name,
                primary=ModelView(
                    provider=tier.primary.provider,
                    model=tier.primary.model,
                    price=_price(table, seed, name, tier.primary, day),
                ),
                fallback=None
                if tier.fallback is None
                else ModelView(
                    provider=tier.fallback.provider,
                    model=tier.fallback.model,
                    price=_price(table, seed, name, tier.fallback, day),
                ),
                max_tokens=tier.max_tokens,
                effort=tier.effort,
                temperature=tier.temperature,
                logprobs=tier.logprobs,
                timeout_seconds=tier.timeout_seconds,
                primary_attempts=tier.primary_attempts,
            )
        )
    listing = ModelsList(
        mode=resolve_mode(settings),
        model_provider=settings.model_provider,
        day=day,
        credentials=_credentials(chats),
        tiers=tiers,
    )
    if json_:
        render.emit_json(listing)
        return
    out = Table(title=f"model tiers (prices in force on {day}, UTC)")
    out.add_column("tier", no_wrap=True)
    out.add_column("primary")
    out.add_column("fallback")
    out.add_column("max_tokens", justify="right", no_wrap=True)
    out.add_column("effort", no_wrap=True)
    out.add_column("timeout", justify="right", no_wrap=True)
    for t in listing.tiers:
        out.add_row(
            t.tier,
            _model_cell(t.primary),
            _model_cell(t.fallback),
            str(t.max_tokens),
            t.effort or "[dim]default[/]",
            f"{t.timeout_seconds:g} s",
        )
    render.out().print(out)
    for provider, cred in listing.credentials.items():
        if cred.present:
            render.say(f"credentials: {provider}: [green]{escape(cred.source)}[/]")
        else:
            render.say(f"credentials: {provider}: [yellow]no credentials[/] (set {escape(_to_set(cred.source))})")
    render.say(f"mode: {listing.mode} (CHIMERA_MODEL_PROVIDER={listing.model_provider})")


# --- chimera models check --------------------------------------------------------------------------


class ModelCheck(BaseModel):
    provider: ProviderName
    model: str
    tiers: list[str]  # where it is configured: "planning primary", "judging fallback"
    status: Literal["ok", "failed", "skipped"]
    latency_ms: int | None = None
    tokens: TokenUsage | None = None
    reply: str | None = None  # the answer's first line
    stop: str | None = None
    error: str | None = None  # failed: the provider's error message; skipped: why
    kind: str | None = None  # failed: the ModelCallError kind (config, unavailable, ...)


class ModelsCheck(BaseModel):
    ok: bool
    checked: int
    failed: int
    skipped: int
    models: list[ModelCheck]


def _targets(catalog: ModelCatalog, tiers: tuple[TierName, ...]) -> list[tuple[ModelChoice, TierName, list[str]]]:
    """Each distinct configured model once: its choice, the first tier naming it (whose settings the call uses),
    and every place it is configured."""
    seen: dict[tuple[str, str], tuple[ModelChoice, TierName, list[str]]] = {}
    for name in tiers:
        tier = catalog.tiers.tier(name)
        for role, choice in (("primary", tier.primary), ("fallback", tier.fallback)):
            if choice is None:
                continue
            entry = seen.setdefault((choice.provider, choice.model), (choice, name, []))
            entry[2].append(f"{name} {role}")
    return list(seen.values())


async def _check_one(
    chat: ChatClient, choice: ModelChoice, tier: TierName, settings: TierSettings, where: list[str]
) -> ModelCheck:
    from chimera.models.chat import ChatRequest, ModelCallError, Turn

    base = ModelCheck(provider=choice.provider, model=choice.model, tiers=where, status="skipped")
    if not chat.has_credentials():
        return base.model_copy(update={"error": f"no credentials (set {_to_set(chat.credential_source())})"})
    request = ChatRequest(
        tier=tier,
        model=choice,
        settings=settings.model_copy(update={"max_tokens": CHECK_MAX_TOKENS}),
        system=CHECK_SYSTEM,
        turns=(Turn(role="user", text=CHECK_PROMPT),),
    )
    started = time.perf_counter()
    try:
        reply = await chat.complete(request)
    except ModelCallError as exc:
        return base.model_copy(update={"status": "failed", "error": str(exc), "kind": exc.kind})
    except Exception as exc:  # an SDK error the adapter does not translate: report it, do not crash the others
        return base.model_copy(update={"status": "failed", "error": f"{type(exc).__name__}: {exc}", "kind": "error"})
    latency = round((time.perf_counter() - started) * 1000)
    return base.model_copy(
        update={
            "status": "ok",
            "latency_ms": latency,
            "tokens": reply.tokens,
            "reply": render.first_line(reply.text),
            "stop": reply.stop,
        }
    )


async def _check_all(
    catalog: ModelCatalog, chats: dict[ProviderName, ChatClient], tiers: tuple[TierName, ...]
) -> list[ModelCheck]:
    targets = _targets(catalog, tiers)
    return list(
        await asyncio.gather(
            *(
                _check_one(chats[choice.provider], choice, tier, catalog.tiers.tier(tier), where)
                for choice, tier, where in targets
            )
        )
    )


def _line(check: ModelCheck) -> str:
    name = f"{escape(check.provider)}:{escape(check.model)}"
    where = f"[dim]({escape(', '.join(check.tiers))})[/]"
    if check.status == "ok":
        tokens = check.tokens or TokenUsage()
        stop = "" if check.stop in (None, "end") else f", stop {check.stop}"
        return (
            f"[green]ok[/]      {name} {where}: {check.latency_ms} ms, "
            f"{tokens.input_tokens} in / {tokens.output_tokens} out tokens{stop}, "
            f"replied {escape(repr(check.reply or ''))}"
        )
    if check.status == "skipped":
        return f"[yellow]skipped[/] {name} {where}: {escape(check.error or '')}"
    return f"[red]FAILED[/]  {name} {where}: {escape(check.kind or '')}: {escape(check.error or '')}"


@app.command("check")
def check_models(
    tier: Annotated[
        str | None,
        typer.Option("--tier", metavar="TIER", help=f"Only this tier's models ({', '.join(TIER_NAMES)})."),
    ] = None,
    json_: JsonFlag = False,
) -> None:
    """Make one tiny call to every configured model (at once): latency and tokens, or the provider's error."""
    from chimera.models.factory import chat_clients

    if tier is not None and tier not in TIER_NAMES:
        render.fail(f"unknown tier {tier!r}: the tiers are {', '.join(TIER_NAMES)}", render.EXIT_USAGE)
    tiers: tuple[TierName, ...] = tuple(t for t in TIER_NAMES if tier is None or t == tier)
    catalog = _catalog(_settings())
    chats = chat_clients()
    checks = asyncio.run(_check_all(catalog, chats, tiers))
    failed = sum(1 for c in checks if c.status == "failed")
    skipped = sum(1 for c in checks if c.status == "skipped")
    checked = len(checks) - skipped
    report = ModelsCheck(ok=checked > 0 and failed == 0, checked=checked, failed=failed, skipped=skipped, models=checks)
    if json_:
        render.emit_json(report)
    else:
        for c in checks:
            render.say(_line(c))
    if checked == 0:
        missing = " or ".join(_to_set(c.credential_source()) for c in chats.values() if not c.has_credentials())
        render.fail(f"no model could be checked: no credentials for their providers (set {missing})")
    if failed:
        render.fail(f"{failed} of {checked} checked model(s) failed")
    if not json_:
        note = f", {skipped} skipped (no credentials)" if skipped else ""
        render.say(f"all {checked} checked model(s) answered{note}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="models")
