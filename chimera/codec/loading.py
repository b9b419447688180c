"""The process's codec, from settings: the key ring read from the secret `codec_keys_secret`.

payload_encryption: "off" never encrypts; "auto" encrypts when the secret exists; "on" refuses to start
without it. A secret that exists but is not a valid key ring is an error in every mode but "off": silently
writing plaintext would be worse than not starting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chimera.codec.aes import EncryptionCodec
from chimera.codec.errors import CodecError
from chimera.codec.keys import KeyRing
from chimera.secrets.base import SecretSource
from chimera.secrets.sources import secret_source

if TYPE_CHECKING:  # an annotation only: chimera.settings may one day read secrets itself
    from chimera.settings import Settings


def load_key_ring(settings: Settings, source: SecretSource | None = None) -> KeyRing | None:
    """The key ring, or None when encryption is off (or "auto" and the secret is absent)."""
    if settings.payload_encryption == "off":
        return None
    source = secret_source(settings) if source is None else source
    text = source.get(settings.codec_keys_secret)
    if text is None:
        if settings.payload_encryption == "on":
            raise CodecError(
                f"payload_encryption is 'on' but the secret '{settings.codec_keys_secret}' (the codec key ring) "
                "is not set in any secrets source; create one with `chimera codec keygen` (specs/codec.md)"
            )
        return None
    return KeyRing.from_json(text)


def codec_for(settings: Settings, source: SecretSource | None = None) -> EncryptionCodec | None:
    """The encryption codec for these settings, or None when payloads go unencrypted. It re-reads the key
    ring from the same source when a payload names a key it does not know."""
    source = secret_source(settings) if source is None else source
    ring = load_key_ring(settings, source)
    if ring is None:
        return None

    def reload() -> KeyRing:
        return load_key_ring(settings, source) or ring

    return EncryptionCodec(ring, reload=reload)
