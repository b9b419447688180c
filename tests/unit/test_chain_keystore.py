"""The agents' encrypted keystore (chimera/chain/keystore.py): real eth-account keys and scrypt keystores on disk."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from eth_account import Account

from chimera.chain.keystore import (
    PASSWORD_FILE,
    AgentSigner,
    Keystore,
    KeystoreError,
    KeystorePasswordError,
    keystore_password,
)
from chimera.secrets import StaticSecrets

PASSWORD = "correct horse battery staple"
FAST_SCRYPT = 2**14  # the real KDF with a smaller work factor, so each test stays well under a second

TX = {
    "to": "0x000000000000000000000000000000000000dEaD",
    "value": 1,
    "gas": 21_000,
    "maxFeePerGas": 2_000_000_000,
    "maxPriorityFeePerGas": 1,
    "nonce": 0,
    "chainId": 31337,
}


@pytest.fixture
def keystore(tmp_path: Path) -> Keystore:
    return Keystore(tmp_path / "keys", PASSWORD, scrypt_n=FAST_SCRYPT)


def _private_key(signer: AgentSigner) -> bytes:
    return bytes(signer._account.key)  # the test peeks, to look for the key where it must not be


def test_round_trip_signs_as_the_stored_address(keystore: Keystore) -> None:
    address = keystore.create("acme", "mira")
    assert keystore.address("acme", "mira") == address
    signer = keystore.unlock("acme", "mira")
    assert signer.address == address
    raw = signer.sign_transaction(TX)
    assert Account.recover_transaction(raw) == address


def test_a_new_keystore_on_the_same_directory_reads_and_unlocks_the_key(keystore: Keystore) -> None:
    address = keystore.create("acme", "mira")
    reopened = Keystore(keystore.directory, PASSWORD)
    assert reopened.agents() == [("acme", "mira")]
    assert reopened.unlock("acme", "mira").address == address


def test_the_file_is_an_encrypted_scrypt_keystore_with_mode_0600(keystore: Keystore) -> None:
    keystore.create("acme", "mira")
    path = keystore.path("acme", "mira")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    data = json.loads(path.read_text())
    assert data["crypto"]["kdf"] == "scrypt"
    assert data["crypto"]["kdfparams"]["n"] == FAST_SCRYPT
    assert [p.name for p in path.parent.iterdir()] == ["mira.json"]  # no temporary file left behind


def test_the_address_needs_no_password_but_signing_refuses_a_wrong_one(keystore: Keystore) -> None:
    address = keystore.create("acme", "mira")
    wrong = Keystore(keystore.directory, "not the password")
    assert wrong.address("acme", "mira") == address
    with pytest.raises(KeystorePasswordError, match="does not decrypt acme/mira"):
        wrong.unlock("acme", "mira")


def test_the_private_key_is_never_on_disk_in_plaintext(keystore: Keystore) -> None:
    keystore.create("acme", "mira")
    keystore.create("acme", "rex")
    keys = [_private_key(keystore.unlock("acme", agent)) for agent in ("mira", "rex")]
    files = [p for p in keystore.directory.rglob("*") if p.is_file()]
    assert len(files) == 2
    for key in keys:
        needles = [key, key.hex().encode(), key.hex().upper().encode()]
        for file in files:
            content = file.read_bytes()
            assert not any(needle in content for needle in needles), f"key material in {file}"
        assert PASSWORD.encode() not in b"".join(f.read_bytes() for f in files)


def test_repr_shows_neither_key_nor_password(keystore: Keystore) -> None:
    keystore.create("acme", "mira")
    signer = keystore.unlock("acme", "mira")
    key = _private_key(signer)
    for text in (repr(signer), str(signer), repr(keystore)):
        assert key.hex() not in text.lower() and PASSWORD not in text
    assert repr(signer) == f"AgentSigner({signer.address})"


def test_two_agents_and_two_tenants_hold_separate_keys(keystore: Keystore) -> None:
    mira = keystore.create("acme", "mira")
    rex = keystore.create("acme", "rex")
    other_mira = keystore.create("globex", "mira")
    assert len({mira, rex, other_mira}) == 3
    assert keystore.agents() == [("acme", "mira"), ("acme", "rex"), ("globex", "mira")]
    assert keystore.unlock("globex", "mira").address == other_mira
    assert _private_key(keystore.unlock("acme", "mira")) != _private_key(keystore.unlock("globex", "mira"))
    raw = keystore.unlock("acme", "rex").sign_transaction(TX)
    assert Account.recover_transaction(raw) == rex != mira


def test_a_key_is_never_replaced(keystore: Keystore) -> None:
    address = keystore.create("acme", "mira")
    with pytest.raises(KeystoreError, match="already has a key"):
        keystore.create("acme", "mira")
    assert keystore.address("acme", "mira") == address


@pytest.mark.parametrize("tenant,agent", [("../etc", "mira"), ("acme", "Mira"), ("acme", ""), ("acme", "a/b")])
def test_ids_that_are_not_slugs_are_refused(keystore: Keystore, tenant: str, agent: str) -> None:
    with pytest.raises(KeystoreError, match=r"invalid (tenant|agent) id"):
        keystore.create(tenant, agent)


def test_a_missing_key_is_named(keystore: Keystore) -> None:
    with pytest.raises(KeystoreError, match="agent acme/ghost has no key"):
        keystore.unlock("acme", "ghost")


def test_the_configured_secret_is_the_password(tmp_path: Path) -> None:
    source = StaticSecrets({"wallet/keystore-password": "from-the-secrets-source"})
    assert keystore_password(source, tmp_path) == "from-the-secrets-source"
    assert not (tmp_path / PASSWORD_FILE).exists()


def test_the_sandbox_generates_a_password_once_into_a_private_file(tmp_path: Path) -> None:
    first = keystore_password(StaticSecrets({}), tmp_path)
    path = tmp_path / PASSWORD_FILE
    assert len(first) >= 40 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keystore_password(StaticSecrets({}), tmp_path) == first
    assert keystore_password(StaticSecrets({}), tmp_path / "elsewhere") != first


def test_the_environment_secret_reaches_the_keystore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from chimera.secrets import EnvSecrets

    monkeypatch.setenv("CHIMERA_SECRET_WALLET_KEYSTORE_PASSWORD", "env-password")
    assert keystore_password(EnvSecrets(), tmp_path) == "env-password"


def test_an_empty_password_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match="password is empty"):
        Keystore(tmp_path, "")
