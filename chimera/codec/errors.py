"""The payload codec's errors: they name key ids and problems, never key material or payload contents."""

from __future__ import annotations


class CodecError(Exception):
    """A payload cannot be encrypted or decrypted (unknown key id, failed authentication, no key ring)."""


class KeyRingError(CodecError):
    """A key ring that is not valid: the message says which field and why."""
