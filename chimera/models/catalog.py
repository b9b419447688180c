"""The model catalog: default tiers, the price table, and pricing a call.

The embedded catalog (chimera/defaults/models.yaml) holds the tiers and the vendors' list prices with
the date each took effect; `CHIMERA_MODEL_CATALOG` points at a replacement file, and `CHIMERA_MODEL_TIERS`
/ `CHIMERA_MODEL_PRICES` change parts of it (chimera/settings.py). A model with no price in the table
is charged the seed's per-request figure for its tier (seed section 4.3), marked as such.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.models import CostLine, ModelPrice, ModelTiers, PriceBasis, TokenUsage
from schemas.plan import Usage

_MICRO = Decimal("0.000001")
_MILLION = Decimal(1_000_000)


class CatalogError(ValueError):
    """The model catalog file is malformed; the message names the file and the field."""


class ModelCatalog(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tiers: ModelTiers
    prices: list[ModelPrice] = Field(default_factory=list)
    seed_request_usd: dict[str, float] = Field(
        default_factory=dict, description="per-request cost by tier where a model has no price (seed 4.3)"
    )

    @classmethod
    def load(cls, path: Path | None = None) -> ModelCatalog:
        """The catalog at `path`, or the embedded one."""
        if path is None:
            text = resources.files("chimera").joinpath("defaults", "models.yaml").read_text(encoding="utf-8")
            where = "the embedded model catalog"
        else:
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise CatalogError(f"cannot read the model catalog {path}: {exc.strerror}") from exc
            where = str(path)
        try:
            raw = yaml.safe_load(text)
            return cls.model_validate(raw)
        except yaml.YAMLError as exc:
            raise CatalogError(f"{where} is not valid YAML: {exc}") from exc
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise CatalogError(f"{where}: {field}: {first['msg']}") from exc

    def with_changes(self, tiers: dict[str, Any], prices: Iterable[ModelPrice]) -> ModelCatalog:
        """This catalog with partial tier overrides merged in and extra price entries added."""
        return self.model_copy(update={"tiers": self.tiers.merged(tiers), "prices": [*self.prices, *prices]})

    def price_table(self) -> PriceTable:
        return PriceTable(self.prices, self.seed_request_usd)


@dataclass(frozen=True)
class Priced:
    cost_usd: float
    basis: PriceBasis
    price_date: date | None


def _money(value: Decimal) -> float:
    return float(value.quantize(_MICRO, rounding=ROUND_HALF_EVEN))


class PriceTable:
    """List prices by model and day: the entry in force on a day is the latest that took effect by then."""

    def __init__(self, prices: Iterable[ModelPrice], seed_request_usd: dict[str, float]) -> None:
        self._prices: dict[tuple[str, str], list[ModelPrice]] = {}
        for price in prices:
            self._prices.setdefault((price.provider, price.model), []).append(price)
        for entries in self._prices.values():
            entries.sort(key=lambda p: p.effective_from)
        self._seed = dict(seed_request_usd)

    def price_on(self, provider: str, model: str, day: date) -> ModelPrice | None:
        in_force = [p for p in self._prices.get((provider, model), []) if p.effective_from <= day]
        return in_force[-1] if in_force else None

    def cost(self, provider: str, model: str, tier: str, tokens: TokenUsage, day: date) -> Priced:
        price = self.price_on(provider, model, day)
        if price is None:
            return Priced(self._seed.get(tier, 0.0), "seed_estimate", None)
        cached = price.cached_input_per_mtok if price.cached_input_per_mtok is not None else price.input_per_mtok
        write = price.cache_write_per_mtok if price.cache_write_per_mtok is not None else price.input_per_mtok
        total = (
            Decimal(tokens.input_tokens) * Decimal(str(price.input_per_mtok))
            + Decimal(tokens.output_tokens) * Decimal(str(price.output_per_mtok))
            + Decimal(tokens.cached_input_tokens) * Decimal(str(cached))
            + Decimal(tokens.cache_write_tokens) * Decimal(str(write))
        ) / _MILLION
        return Priced(_money(total), "price_table", price.effective_from)


def price_line(
    table: PriceTable,
    key: str,
    tier: str,
    provider: str,
    model: str,
    tokens: TokenUsage,
    day: date,
    *,
    estimated: bool = False,
) -> CostLine:
    """One model call as a priced cost line."""
    priced = table.cost(provider, model, tier, tokens, day)
    return CostLine(
        key=key,
        tier=tier,
        provider=provider,
        model=model,
        tokens=tokens,
        cost_usd=priced.cost_usd,
        estimated=estimated,
        basis=priced.basis,
        price_date=priced.price_date,
    )


def total_usage(lines: Iterable[CostLine], model: str, provider: str, tier: str) -> Usage:
    """A step's lines summed into the Usage that travels in workflow history."""
    lines = list(lines)
    tokens = sum((line.tokens for line in lines), TokenUsage())
    cost = sum((Decimal(str(line.cost_usd)) for line in lines), Decimal(0))
    return Usage(
        model=model,
        provider=provider,
        tier=tier,
        calls=len(lines),
        input_tokens=tokens.input_tokens,
        output_tokens=tokens.output_tokens,
        cached_input_tokens=tokens.cached_input_tokens,
        cache_write_tokens=tokens.cache_write_tokens,
        cost_usd=_money(cost),
        estimated=any(line.estimated for line in lines),
    )
