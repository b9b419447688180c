"""The codec's key ring: AES-256 keys by id, one of them active for encryption, all kept for decryption.

Its JSON form (the secret `codec_keys_secret`, specs/codec.md):

    {"active": "2026-12", "keys": {"2026-11": "<base64 of 32 bytes>", "2026-12": "<base64 of 32 bytes>"}}

`new_key_ring`, `rotate`, `activate` and `retire` are what `chimera codec keygen|rotate` call.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from chimera.codec.errors import KeyRingError

KEY_BYTES = 32  # AES-256
# Key ids travel in payload metadata and the associated data: short, printable, no separators.
KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class KeyRing:
    active: str
    keys: Mapping[str, bytes] = field(repr=False)

    def __post_init__(self) -> None:
        for key_id, key in self.keys.items():
            _check_key_id(key_id)
            if len(key) != KEY_BYTES:
                raise KeyRingError(f"codec key ring: key '{key_id}' is {len(key)} bytes; AES-256 needs {KEY_BYTES}")
        if self.active not in self.keys:
            raise KeyRingError(f"codec key ring: active key '{self.active}' is not among the keys {sorted(self.keys)}")
        object.__setattr__(self, "keys", MappingProxyType(dict(self.keys)))

    def key(self, key_id: str) -> bytes | None:
        return self.keys.get(key_id)

    @classmethod
    def from_json(cls, text: str) -> KeyRing:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            # The position only: the decoder's message never quotes the document, and neither do we.
            raise KeyRingError(f"codec key ring is not valid JSON ({exc.msg} at line {exc.lineno})") from None
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: Any) -> KeyRing:
        if not isinstance(raw, dict):
            raise KeyRingError('codec key ring must be a JSON object {"active": ..., "keys": {...}}')
        unknown = sorted(set(raw) - {"active", "keys"})
        if unknown:
            raise KeyRingError(f"codec key ring has unknown fields {unknown} (expected 'active' and 'keys')")
        active, keys = raw.get("active"), raw.get("keys")
        if not isinstance(active, str) or not active:
            raise KeyRingError("codec key ring: 'active' must name the key id that encrypts new payloads")
        if not isinstance(keys, dict) or not keys:
            raise KeyRingError("codec key ring: 'keys' must be a non-empty object of key id -> base64 key")
        return cls(active=active, keys={key_id: _decode_key(key_id, value) for key_id, value in keys.items()})

    def to_json(self) -> str:
        keys = {key_id: base64.b64encode(key).decode("ascii") for key_id, key in sorted(self.keys.items())}
        return json.dumps({"active": self.active, "keys": keys}, indent=2) + "\n"


def _check_key_id(key_id: object) -> None:
    if not isinstance(key_id, str) or not KEY_ID.match(key_id):
        raise KeyRingError(
            f"codec key ring: key id {key_id!r} must be 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )


def _decode_key(key_id: str, value: object) -> bytes:
    _check_key_id(key_id)
    if not isinstance(value, str):
        raise KeyRingError(f"codec key ring: key '{key_id}' must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise KeyRingError(f"codec key ring: key '{key_id}' is not valid base64") from None


def generate_key() -> bytes:
    return os.urandom(KEY_BYTES)


def default_key_id(taken: Mapping[str, object] = MappingProxyType({})) -> str:
    """This month ("2026-12"), with ".2", ".3", ... when a key of that month exists already."""
    base = datetime.now(UTC).strftime("%Y-%m")
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}.{n}"
    return candidate


def new_key_ring(key_id: str | None = None) -> str:
    """A new key ring (JSON) with one fresh random key, active."""
    key_id = key_id or default_key_id()
    return KeyRing(active=key_id, keys={key_id: generate_key()}).to_json()


def rotate(ring_json: str, key_id: str | None = None, *, make_active: bool = True) -> str:
    """The ring with a fresh key added (and made active unless `make_active=False`); every old key is kept, so
    histories encrypted with them still decrypt."""
    ring = KeyRing.from_json(ring_json)
    key_id = key_id or default_key_id(ring.keys)
    if key_id in ring.keys:
        raise KeyRingError(f"codec key ring already has a key '{key_id}'")
    keys = {**ring.keys, key_id: generate_key()}
    return KeyRing(active=key_id if make_active else ring.active, keys=keys).to_json()


def activate(ring_json: str, key_id: str) -> str:
    """The ring with `key_id` (already in it) made the key that encrypts new payloads."""
    ring = KeyRing.from_json(ring_json)
    if key_id not in ring.keys:
        raise KeyRingError(f"codec key ring has no key '{key_id}' to activate (keys: {sorted(ring.keys)})")
    return KeyRing(active=key_id, keys=ring.keys).to_json()


def retire(ring_json: str, key_id: str) -> str:
    """The ring without `key_id`. Payloads encrypted with it can no longer be read: retire a key only once no
    retained history (nor running workflow) holds payloads encrypted with it."""
    ring = KeyRing.from_json(ring_json)
    if key_id == ring.active:
        raise KeyRingError(f"codec key '{key_id}' is active: activate another key before retiring it")
    if key_id not in ring.keys:
        raise KeyRingError(f"codec key ring has no key '{key_id}' (keys: {sorted(ring.keys)})")
    return KeyRing(active=ring.active, keys={k: v for k, v in ring.keys.items() if k != key_id}).to_json()
