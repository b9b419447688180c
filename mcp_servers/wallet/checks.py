"""The wallet's argument checks, the same for every backend: a bad argument is refused before anything is signed."""

from __future__ import annotations

import re

from eth_typing import ChecksumAddress
from web3 import Web3

from mcp_servers.common import ToolError

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
ADDRESS_PATTERN = re.compile(r"^0x[0-9a-fA-F]{40}$")
MEMO_MAX = 256


def is_address(text: object) -> bool:
    """0x and 40 hex digits; mixed case must be the right EIP-55 checksum (a typo is refused, not paid)."""
    if not isinstance(text, str) or not ADDRESS_PATTERN.match(text):
        return False
    digits = text[2:]
    return digits in (digits.lower(), digits.upper()) or Web3.is_checksum_address(text)


def check_key(key: str) -> None:
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise ToolError(
            "invalid_idempotency_key", 'an idempotency_key is 1 to 128 of letters, digits, "_", ".", ":", "-"'
        )


def checked_transfer(to: str, amount: int, idempotency_key: str, memo: str | None) -> ChecksumAddress:
    """A transfer's arguments checked (ToolError with the code of the first problem); the recipient, checksummed."""
    check_key(idempotency_key)
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ToolError("invalid_amount", f"amount is a positive whole number of USDC base units, got {amount!r}")
    if not is_address(to):
        raise ToolError("invalid_address", f"{to!r} is not an EVM address (0x and 40 hex digits, valid checksum)")
    if memo is not None and len(memo) > MEMO_MAX:
        raise ToolError("invalid_memo", f"a memo is at most {MEMO_MAX} characters")
    return Web3.to_checksum_address(to)
