"""`chimera models list | check`: the tiers with today's prices and the credentials present, and one tiny call to
every configured model through the real SDKs, against the loopback fakes (tests/helpers/fake_llm.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from chimera.cli.app import app
from chimera.models.catalog import ModelCatalog
from schemas.models import TIER_NAMES
from tests.helpers.fake_llm import (
    ANTHROPIC_API_KEY,
    GEMINI_API_KEY,
    FakeAnthropic,
    FakeGemini,
    Reply,
    anthropic_error,
    anthropic_text,
    fake_anthropic,
    fake_gemini,
    gemini_error,
    gemini_text,
)

CREDENTIAL_ENV = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GOOGLE_GEMINI_BASE_URL",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_CLOUD_PROJECT",
)
CATALOG = ModelCatalog.load()
ALL_MODELS = {
    (c.provider, c.model)
    for t in TIER_NAMES
    for c in (CATALOG.tiers.tier(t).primary, CATALOG.tiers.tier(t).fallback)
    if c is not None
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CREDENTIAL_ENV:
        monkeypatch.delenv(name, raising=False)
    for name in ("MODEL_PROVIDER", "MODEL_CATALOG", "MODEL_TIERS", "MODEL_PRICES"):
        monkeypatch.delenv(f"CHIMERA_{name}", raising=False)
    monkeypatch.setenv("COLUMNS", "250")


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeAnthropic, FakeGemini]]:
    with fake_anthropic() as a, fake_gemini() as g:
        monkeypatch.setenv("ANTHROPIC_API_KEY", a.api_key)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", a.base_url)
        monkeypatch.setenv("GEMINI_API_KEY", g.api_key)
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", g.base_url)
        a.responder = lambda body: anthropic_text("OK", model=body["model"], input_tokens=21, output_tokens=2)
        g.responder = lambda body: gemini_text("OK", prompt_tokens=19, candidates_tokens=1)
        yield a, g


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, ["models", *args])


def everything(result: Any) -> str:
    return f"{result.stdout}{result.stderr}"


def assert_no_key(result: Any) -> None:
    text = everything(result)
    assert ANTHROPIC_API_KEY not in text and GEMINI_API_KEY not in text


# --- list ----------------------------------------------------------------------------------------------------


def test_list_shows_every_tier_its_prices_and_no_credentials() -> None:
    result = cli("list")
    assert result.exit_code == 0, everything(result)
    out = result.stdout
    for tier in TIER_NAMES:
        assert tier in out
    for provider, model in ALL_MODELS:
        assert f"{provider}:{model}" in out
    assert "$2 in / $10 out / $0.1 cached per MTok" in out  # claude-sonnet-5-5 (post fallback)
    assert "$0.1 in / $0.5 out / $0.01 cached per MTok" in out  # claude-haiku-5-5 (reply)
    assert "credentials: anthropic: no credentials (set ANTHROPIC_API_KEY)" in out
    assert "credentials: gemini: no credentials (set GEMINI_API_KEY)" in out
    assert "mode: offline (CHIMERA_MODEL_PROVIDER=auto)" in out


def test_list_names_a_model_without_a_price_as_the_seed_estimate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHIMERA_MODEL_TIERS", json.dumps({"planning": {"primary": {"model": "gemini-unpriced"}}}))
    result = cli("list")
    assert result.exit_code == 0, everything(result)
    assert "gemini:gemini-unpriced" in result.stdout
    assert "seed estimate $0.015/request" in result.stdout


def test_list_json_names_the_credential_variable_and_the_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_API_KEY)
    result = cli("list", "--json")
    assert result.exit_code == 0, everything(result)
    data = json.loads(result.stdout)
    assert data["mode"] == "live"
    assert data["credentials"] == {
        "anthropic": {"present": True, "source": "ANTHROPIC_API_KEY"},
        "gemini": {"present": False, "source": "GEMINI_API_KEY (unset)"},
    }
    assert [t["tier"] for t in data["tiers"]] == list(TIER_NAMES)
    reply = data["tiers"][TIER_NAMES.index("reply")]
    assert reply["primary"]["model"] == "claude-haiku-5-5"
    assert reply["primary"]["price"]["basis"] == "price_table"
    assert reply["primary"]["price"]["input_per_mtok"] == 0.10
    assert reply["max_tokens"] == 512 and reply["effort"] == "low" and reply["timeout_seconds"] == 20
    assert_no_key(result)


def test_a_broken_catalog_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHIMERA_MODEL_TIERS", json.dumps({"drafting": {"max_tokens": 100}}))
    for command in ("list", "check"):
        result = cli(command)
        assert result.exit_code == 2, everything(result)
        assert "unknown model tier(s) ['drafting']" in result.stderr


# --- check ---------------------------------------------------------------------------------------------------


def test_check_calls_each_distinct_model_once_and_reports_latency(fakes: tuple[FakeAnthropic, FakeGemini]) -> None:
    a, g = fakes
    result = cli("check")
    assert result.exit_code == 0, everything(result)
    called = {("anthropic", b["model"]) for b in a.bodies()} | {("gemini", r.model) for r in g.requests}
    assert called == ALL_MODELS
    assert len(a.requests) + len(g.requests) == len(ALL_MODELS)  # each once, though some serve two tiers
    body = a.bodies()[0]
    assert body["max_tokens"] == 16 and "tools" not in body
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Reply with OK."}]}]
    assert g.requests[0].json["generationConfig"]["maxOutputTokens"] == 16
    lines = result.stdout.strip().splitlines()
    for provider, model in ALL_MODELS:
        line = next(line for line in lines if f" {provider}:{model} " in line)
        assert line.startswith("ok ") and " ms, " in line and "replied 'OK'" in line, line
    assert "21 in / 2 out tokens" in result.stdout and "19 in / 1 out tokens" in result.stdout
    assert f"all {len(ALL_MODELS)} checked model(s) answered" in result.stdout
    assert_no_key(result)


def test_check_json_and_one_tier(fakes: tuple[FakeAnthropic, FakeGemini]) -> None:
    a, g = fakes
    result = cli("check", "--tier", "reply", "--json")
    assert result.exit_code == 0, everything(result)
    data = json.loads(result.stdout)
    assert data["ok"] is True and data["checked"] == 2 and data["failed"] == 0
    by_model = {m["model"]: m for m in data["models"]}
    assert set(by_model) == {"claude-haiku-5-5", "gemini-3.5-flash-lite"}
    haiku = by_model["claude-haiku-5-5"]
    assert haiku["status"] == "ok" and haiku["tiers"] == ["reply primary"]
    assert isinstance(haiku["latency_ms"], int) and haiku["latency_ms"] >= 0
    assert haiku["tokens"]["input_tokens"] == 21 and haiku["reply"] == "OK"
    assert [b["model"] for b in a.bodies()] == ["claude-haiku-5-5"]
    assert [r.model for r in g.requests] == ["gemini-3.5-flash-lite"]


def test_check_reports_the_exact_error_of_the_failing_model(fakes: tuple[FakeAnthropic, FakeGemini]) -> None:
    a, _ = fakes

    def answer(body: dict[str, Any]) -> Reply:
        if body["model"] == "claude-haiku-5-5":
            return anthropic_error(404, "not_found_error", "model: claude-haiku-5-5")
        return anthropic_text("OK", model=body["model"])

    a.responder = answer
    result = cli("check")
    assert result.exit_code == 1, everything(result)
    expected = (
        "anthropic model claude-haiku-5-5 (reply tier): unknown model (model: claude-haiku-5-5); "
        "set models.reply to a current Claude model id"
    )
    line = next(line for line in result.stdout.splitlines() if "anthropic:claude-haiku-5-5" in line)
    assert line.startswith("FAILED") and f"config: {expected}" in line
    assert sum(1 for line in result.stdout.splitlines() if line.startswith("ok ")) == len(ALL_MODELS) - 1
    assert f"1 of {len(ALL_MODELS)} checked model(s) failed" in result.stderr
    assert_no_key(result)

    result = cli("check", "--json")
    assert result.exit_code == 1
    haiku = next(m for m in json.loads(result.stdout)["models"] if m["model"] == "claude-haiku-5-5")
    assert haiku == {**haiku, "status": "failed", "kind": "config", "error": expected, "latency_ms": None}


def test_check_reports_every_gemini_model_failing(fakes: tuple[FakeAnthropic, FakeGemini]) -> None:
    _, g = fakes
    g.responder = lambda body: gemini_error(404, "NOT_FOUND", "models/x is not found for API version v1beta")
    result = cli("check", "--json")
    assert result.exit_code == 1, everything(result)
    data = json.loads(result.stdout)
    gemini = [m for m in data["models"] if m["provider"] == "gemini"]
    assert gemini and all(m["status"] == "failed" and m["kind"] == "config" for m in gemini)
    carbon = next(m for m in gemini if m["model"] == "gemini-4-carbon")
    assert carbon["error"] == (
        "gemini model gemini-4-carbon (planning tier): unknown model (models/x is not found for API version "
        "v1beta); set models.planning to a current Gemini model id"
    )
    assert all(m["status"] == "ok" for m in data["models"] if m["provider"] == "anthropic")
    assert data["failed"] == len(gemini) and data["ok"] is False
    assert_no_key(result)


def test_check_skips_a_provider_without_credentials(
    fakes: tuple[FakeAnthropic, FakeGemini], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, g = fakes
    monkeypatch.delenv("GEMINI_API_KEY")
    result = cli("check")
    assert result.exit_code == 0, everything(result)
    assert g.requests == []
    skipped = [line for line in result.stdout.splitlines() if line.startswith("skipped")]
    assert skipped and all("no credentials (set GEMINI_API_KEY)" in line for line in skipped)
    assert len(skipped) == sum(1 for p, _ in ALL_MODELS if p == "gemini")
    assert "skipped (no credentials)" in result.stdout


def test_check_with_no_credentials_at_all_fails_clearly() -> None:
    result = cli("check")
    assert result.exit_code == 1
    assert "no model could be checked" in result.stderr
    assert "ANTHROPIC_API_KEY or GEMINI_API_KEY" in result.stderr


def test_check_refuses_an_unknown_tier() -> None:
    result = cli("check", "--tier", "drafting")
    assert result.exit_code == 2
    assert "unknown tier 'drafting'" in result.stderr
