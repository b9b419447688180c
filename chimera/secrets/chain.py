"""Several secrets sources asked in order: the first that has the name wins."""

from __future__ import annotations

from collections.abc import Sequence

from chimera.secrets.base import SecretSource


def kind(source: SecretSource) -> str:
    found = getattr(source, "kind", None)
    return found if isinstance(found, str) else type(source).__name__


class ChainedSecrets:
    kind = "chain"

    def __init__(self, sources: Sequence[SecretSource]) -> None:
        self.sources = tuple(sources)

    def get(self, name: str) -> str | None:
        for source in self.sources:
            value = source.get(name)
            if value is not None:
                return value
        return None

    def __repr__(self) -> str:
        # Kinds only: a source's settings (paths, prefixes) are not needed to read a log line.
        return f"ChainedSecrets({', '.join(kind(s) for s in self.sources)})"
