"""Which providers have credentials in this process, read from the SDKs' own variables (names only, never values).

Light on purpose: deciding offline or live must not import the SDKs (about 57 MB of a worker's memory).
"""

from __future__ import annotations

import os

from schemas.models import ProviderName

VARIABLES: dict[ProviderName, tuple[str, ...]] = {
    "anthropic": ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
}
VERTEX = "Vertex AI (GOOGLE_GENAI_USE_VERTEXAI, GOOGLE_CLOUD_PROJECT)"


def vertex_configured() -> bool:
    on = os.environ.get("GOOGLE_GENAI_USE_VERTEXAI", "").lower() in ("1", "true", "yes")
    return on and bool(os.environ.get("GOOGLE_CLOUD_PROJECT"))


def present(provider: ProviderName) -> bool:
    return any(os.environ.get(v) for v in VARIABLES[provider]) or (provider == "gemini" and vertex_configured())


def source(provider: ProviderName) -> str:
    """The variable that supplies the credentials, or the one to set: `GEMINI_API_KEY (unset)`."""
    if provider == "gemini" and vertex_configured():
        return VERTEX
    found = next((v for v in VARIABLES[provider] if os.environ.get(v)), None)
    return found or f"{VARIABLES[provider][0]} (unset)"


def any_present() -> bool:
    return any(present(p) for p in VARIABLES)
