"""Encrypting Temporal payloads: an AES-GCM payload codec, its key ring, and the codec server for the Web UI
(specs/codec.md). The server lives in chimera.codec.server (it imports Starlette and uvicorn)."""

from chimera.codec.aes import ENCODING, KEY_ID_HEADER, EncryptionCodec
from chimera.codec.errors import CodecError, KeyRingError
from chimera.codec.failures import EncryptedFailureConverter
from chimera.codec.keys import KeyRing, activate, new_key_ring, retire, rotate
from chimera.codec.loading import codec_for, load_key_ring

__all__ = [
    "ENCODING",
    "KEY_ID_HEADER",
    "CodecError",
    "EncryptedFailureConverter",
    "EncryptionCodec",
    "KeyRing",
    "KeyRingError",
    "activate",
    "codec_for",
    "load_key_ring",
    "new_key_ring",
    "retire",
    "rotate",
]
