"""AES-256-GCM payload encryption for Temporal: what workers and clients send is unreadable to the server.

An encrypted payload has metadata `encoding: binary/encrypted` and `encryption-key-id: <kid>`, and data
nonce (12 random bytes) + ciphertext of the original serialized `Payload`. The encoding and key id are the
associated data, so neither can be changed without the payload failing authentication. A payload that is not
`binary/encrypted` decodes unchanged: histories recorded before encryption was turned on still read.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from chimera.codec.errors import CodecError
from chimera.codec.keys import KeyRing
from chimera.secrets.base import SecretsError

ENCODING = b"binary/encrypted"
KEY_ID_HEADER = "encryption-key-id"
NONCE_BYTES = 12
RELOAD_AT_MOST_EVERY_SECONDS = 30.0
logger = logging.getLogger("chimera.codec")


def associated_data(key_id: str) -> bytes:
    return ENCODING + b"\n" + key_id.encode("ascii")


class EncryptionCodec(PayloadCodec):
    """Encrypts with the ring's active key; decrypts with any key of the ring.

    `reload`, when given, re-reads the key ring when a payload names a key this process does not know (another
    process rotated first), at most every RELOAD_AT_MOST_EVERY_SECONDS."""

    def __init__(self, ring: KeyRing, *, reload: Callable[[], KeyRing] | None = None) -> None:
        self._ring = ring
        self._reload = reload
        self._reloaded_at = float("-inf")

    @property
    def ring(self) -> KeyRing:
        return self._ring

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        ring = self._ring
        aead = AESGCM(ring.keys[ring.active])
        return [self._encrypt(aead, ring.active, p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        decoded = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                decoded.append(payload)
                continue
            key_id = payload.metadata.get(KEY_ID_HEADER, b"").decode("ascii", "replace")
            decoded.append(self._decrypt(await self._key(key_id), key_id, payload.data))
        return decoded

    @staticmethod
    def _encrypt(aead: AESGCM, key_id: str, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)  # random per payload: 2^32 payloads per key keep collisions negligible
        sealed = aead.encrypt(nonce, payload.SerializeToString(), associated_data(key_id))
        return Payload(metadata={"encoding": ENCODING, KEY_ID_HEADER: key_id.encode("ascii")}, data=nonce + sealed)

    @staticmethod
    def _decrypt(key: bytes, key_id: str, data: bytes) -> Payload:
        if len(data) < NONCE_BYTES + 16:
            raise CodecError(f"payload encrypted with key '{key_id}' is truncated ({len(data)} bytes)")
        try:
            plain = AESGCM(key).decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], associated_data(key_id))
        except InvalidTag:
            raise CodecError(
                f"payload encrypted with key '{key_id}' failed authentication: its data or metadata was altered, "
                "or the key with that id is not the one that encrypted it"
            ) from None
        try:
            return Payload.FromString(plain)
        except DecodeError:
            raise CodecError(f"payload encrypted with key '{key_id}' did not decrypt to a payload") from None

    async def _key(self, key_id: str) -> bytes:
        if not key_id:
            raise CodecError(f"encrypted payload has no '{KEY_ID_HEADER}' metadata")
        key = self._ring.key(key_id)
        if key is None and self._reload is not None and self._may_reload():
            try:
                self._ring = await asyncio.to_thread(self._reload)
            except (CodecError, SecretsError) as exc:  # keep the ring we have; the error below says what is missing
                logger.warning("could not re-read the codec key ring: %s", exc)
            else:
                logger.info("re-read the codec key ring for key '%s': now %s", key_id, sorted(self._ring.keys))
            key = self._ring.key(key_id)
        if key is None:
            raise CodecError(
                f"payload encrypted with key '{key_id}', which is not in this process's key ring "
                f"(keys: {sorted(self._ring.keys)}); add it to the codec key ring (specs/codec.md)"
            )
        return key

    def _may_reload(self) -> bool:
        now = time.monotonic()
        if now - self._reloaded_at < RELOAD_AT_MOST_EVERY_SECONDS:
            return False
        self._reloaded_at = now
        return True

    def __repr__(self) -> str:
        return f"EncryptionCodec(active={self._ring.active!r}, keys={sorted(self._ring.keys)})"
