"""One encrypted key per agent for the sandbox chain (specs/chain.md).

Each key is made by eth-account and stored only as eth-account's encrypted keystore JSON (scrypt KDF,
AES-128-CTR), one file per agent at `<dir>/<tenant>/<agent>.json`, mode 0600. The address is in the clear in
that file, so reading it needs no password; signing decrypts the key with the password, which comes from the
secrets source (`wallet/keystore-password`) or, in the sandbox, from a generated file next to the keystore.
Nothing here logs, returns or prints a private key.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils.address import to_checksum_address

from chimera.secrets import SecretSource

PASSWORD_SECRET = "wallet/keystore-password"
PASSWORD_FILE = "keystore-password"  # the sandbox's generated password, when no secret is configured
# Chimera's tenant and agent ids (as chimera/memory/models.py ID_PATTERN): also safe as file and directory names.
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class KeystoreError(Exception):
    """A key is missing, already exists, or its file is unreadable (the message names the agent, never a key)."""


class KeystorePasswordError(KeystoreError):
    """The password does not decrypt this key."""


def keystore_password(source: SecretSource, state_dir: Path) -> str:
    """The keystore password: the secret `wallet/keystore-password` when configured; otherwise the sandbox's
    own, generated on first use into `<state_dir>/keystore-password` (mode 0600) and read from there after."""
    configured = source.get(PASSWORD_SECRET)
    if configured:
        return configured
    path = state_dir / PASSWORD_FILE
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_password(path)
    generated = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as f:
        f.write(generated + "\n")
    return generated


def _read_password(path: Path) -> str:
    value = path.read_text().strip()
    if not value:
        raise KeystoreError(f"the keystore password file {path} is empty; delete it only if no key uses it")
    return value


class AgentSigner:
    """An agent's unlocked key, able to sign transactions; its repr and str show only the address."""

    __slots__ = ("_account", "address")

    def __init__(self, account: LocalAccount) -> None:
        self._account = account
        self.address: ChecksumAddress = account.address

    def sign_transaction(self, transaction: Mapping[str, Any]) -> bytes:
        """The signed raw transaction, ready for `eth_sendRawTransaction`."""
        signed = self._account.sign_transaction(dict(transaction))
        return bytes(signed.raw_transaction)

    def sign_typed_data(
        self, domain: Mapping[str, Any], types: Mapping[str, list[dict[str, str]]], message: Mapping[str, Any]
    ) -> bytes:
        """The 65-byte EIP-712 signature of `message` (e.g. an EIP-3009 transfer authorization for x402)."""
        signed = self._account.sign_typed_data(
            domain_data=dict(domain), message_types={k: list(v) for k, v in types.items()}, message_data=dict(message)
        )
        return bytes(signed.signature)

    def __repr__(self) -> str:
        return f"AgentSigner({self.address})"

    __str__ = __repr__


class Keystore:
    """The agents' encrypted keys under `directory`, all under one password."""

    def __init__(self, directory: Path, password: str, *, scrypt_n: int | None = None) -> None:
        """`scrypt_n` is the scrypt work factor for new keys (None: eth-account's default, 2**18)."""
        if not password:
            raise KeystoreError("the keystore password is empty")
        self.directory = directory
        self._password = password
        self._scrypt_n = scrypt_n

    def path(self, tenant: str, agent: str) -> Path:
        return self.directory / _checked_id("tenant", tenant) / f"{_checked_id('agent', agent)}.json"

    def create(self, tenant: str, agent: str) -> ChecksumAddress:
        """Make a new key for the agent, store it encrypted, and return its address. Refuses to replace a key."""
        path = self.path(tenant, agent)
        if path.exists():
            raise KeystoreError(f"agent {tenant}/{agent} already has a key at {path}")
        account: LocalAccount = Account.create()
        encrypted = Account.encrypt(account.key, self._password, kdf="scrypt", iterations=self._scrypt_n)
        _write_new_private_file(path, json.dumps(encrypted))
        return account.address

    def address(self, tenant: str, agent: str) -> ChecksumAddress:
        """The agent's address, read from the keystore file without the password."""
        return to_checksum_address(self._load(tenant, agent)["address"])

    def unlock(self, tenant: str, agent: str) -> AgentSigner:
        """Decrypt the agent's key for signing; KeystorePasswordError if the password is wrong."""
        data = self._load(tenant, agent)
        try:
            key = Account.decrypt(data, self._password)
        except ValueError as exc:  # eth-account: "MAC mismatch"
            raise KeystorePasswordError(f"the keystore password does not decrypt {tenant}/{agent}'s key") from exc
        return AgentSigner(Account.from_key(key))

    def agents(self) -> list[tuple[str, str]]:
        """Every (tenant, agent) with a key, sorted."""
        if not self.directory.is_dir():
            return []
        return sorted(
            (tenant_dir.name, file.stem)
            for tenant_dir in self.directory.iterdir()
            if tenant_dir.is_dir() and ID_PATTERN.match(tenant_dir.name)
            for file in tenant_dir.glob("*.json")
            if ID_PATTERN.match(file.stem)
        )

    def _load(self, tenant: str, agent: str) -> dict[str, Any]:
        path = self.path(tenant, agent)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise KeystoreError(f"agent {tenant}/{agent} has no key (no {path})") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise KeystoreError(f"the key file {path} is unreadable: {exc.__class__.__name__}") from None
        if not isinstance(data, dict) or "crypto" not in data or "address" not in data:
            raise KeystoreError(f"the key file {path} is not an encrypted keystore")
        return data

    def __repr__(self) -> str:
        return f"Keystore({self.directory})"


def _checked_id(kind: str, value: str) -> str:
    if not ID_PATTERN.match(value):
        raise KeystoreError(f"invalid {kind} id {value!r}: use lowercase letters, digits, '-' and '_' (max 64)")
    return value


def _write_new_private_file(path: Path, text: str) -> None:
    """Write `text` to a new file `path`, mode 0600, whole or not at all; refuse if `path` exists."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.link(temp, path)  # fails if another process made this agent's key first
    except FileExistsError:
        raise KeystoreError(f"a key already exists at {path}") from None
    finally:
        temp.unlink(missing_ok=True)
