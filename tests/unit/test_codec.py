"""The AES-GCM payload codec and its key ring: real Chimera payloads through the pydantic data converter."""

from __future__ import annotations

import base64
import json
import os

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError

from chimera.codec import (
    ENCODING,
    KEY_ID_HEADER,
    CodecError,
    EncryptionCodec,
    KeyRing,
    KeyRingError,
    activate,
    codec_for,
    load_key_ring,
    new_key_ring,
    retire,
    rotate,
)
from chimera.secrets import StaticSecrets
from chimera.settings import Settings
from chimera.temporal_config import data_converter
from schemas.campaign_run import CampaignInput
from tests.helpers import scripted
from tests.helpers.campaigns import runtime

PERSONA_LINE = "Thrifted this blazer for $6"


def ring_of(*key_ids: str, active: str | None = None) -> KeyRing:
    return KeyRing(active=active or key_ids[-1], keys={k: os.urandom(32) for k in key_ids})


def campaign_input() -> CampaignInput:
    return CampaignInput(spec=scripted.spec(), runtime=runtime("q"), max_cycles=1)


def settings(**overrides: object) -> Settings:
    return Settings.model_validate({"payload_encryption": "auto", **overrides})


# --- round trips -----------------------------------------------------------------------------


async def test_workflow_payloads_round_trip_encrypted() -> None:
    ring = ring_of("k1")
    converter = data_converter(settings(), StaticSecrets({"codec-keys": ring.to_json()}))
    inp = campaign_input()
    payloads = await converter.encode([inp, "a plain string", {"n": 1}, None])
    for payload in payloads:
        assert payload.metadata["encoding"] == ENCODING
        assert payload.metadata[KEY_ID_HEADER] == b"k1"
        assert PERSONA_LINE.encode() not in payload.data and b"json/plain" not in payload.data
    back = await converter.decode(payloads, [CampaignInput, str, dict, type(None)])
    assert back == [inp, "a plain string", {"n": 1}, None]


async def test_a_fresh_nonce_per_payload() -> None:
    codec = EncryptionCodec(ring_of("k1"))
    plain = (await pydantic_data_converter.encode(["same"]))[0]
    first, second = await codec.encode([plain, plain])
    assert first.data[:12] != second.data[:12] and first.data != second.data
    assert await codec.decode([first, second]) == [plain, plain]


async def test_a_plain_payload_passes_through() -> None:
    """Histories recorded before encryption was turned on still read."""
    codec = EncryptionCodec(ring_of("k1"))
    plain = await pydantic_data_converter.encode([campaign_input()])
    assert await codec.decode(plain) == plain
    mixed = [(await codec.encode(plain))[0], plain[0]]
    assert await codec.decode(mixed) == [plain[0], plain[0]]


async def test_failure_messages_are_encrypted_too() -> None:
    converter = data_converter(settings(), StaticSecrets({"codec-keys": ring_of("k1").to_json()}))
    failure = Failure()
    await converter.encode_failure(ApplicationError("draft mentions crypto giveaway", type="Blocked"), failure)
    assert "crypto" not in str(failure)  # message and stack trace moved into the encrypted attributes
    assert failure.encoded_attributes.metadata["encoding"] == ENCODING
    error = await converter.decode_failure(failure)
    assert isinstance(error, ApplicationError) and error.message == "draft mentions crypto giveaway"


async def test_the_codecs_own_errors_stay_readable() -> None:
    """A worker that cannot decrypt says why in plain words (key ids only), not as another encrypted blob."""
    converter = data_converter(settings(), StaticSecrets({"codec-keys": ring_of("k1").to_json()}))
    failure = Failure()
    await converter.encode_failure(CodecError("payload encrypted with key 'k0', which is not in ..."), failure)
    assert failure.message.startswith("payload encrypted with key 'k0'")
    assert failure.application_failure_info.type == "CodecError"
    assert not failure.HasField("encoded_attributes")


# --- rotation --------------------------------------------------------------------------------


async def test_rotation_keeps_old_payloads_readable() -> None:
    v1 = new_key_ring("2026-11")
    old = await EncryptionCodec(KeyRing.from_json(v1)).encode(await pydantic_data_converter.encode(["before"]))
    v2 = rotate(v1, "2026-12")
    ring = KeyRing.from_json(v2)
    assert ring.active == "2026-12" and set(ring.keys) == {"2026-11", "2026-12"}
    assert ring.keys["2026-11"] == KeyRing.from_json(v1).keys["2026-11"]
    codec = EncryptionCodec(ring)
    new = await codec.encode(await pydantic_data_converter.encode(["after"]))
    assert new[0].metadata[KEY_ID_HEADER] == b"2026-12"
    decoded = await codec.decode([old[0], new[0]])
    assert pydantic_data_converter.payload_converter.from_payloads(decoded, [str, str]) == ["before", "after"]


def test_rotate_without_activating_then_activate_then_retire() -> None:
    v1 = new_key_ring("a")
    staged = KeyRing.from_json(rotate(v1, "b", make_active=False))
    assert staged.active == "a" and set(staged.keys) == {"a", "b"}
    live = activate(staged.to_json(), "b")
    assert KeyRing.from_json(live).active == "b"
    with pytest.raises(KeyRingError, match="'b' is active"):
        retire(live, "b")
    assert set(KeyRing.from_json(retire(live, "a")).keys) == {"b"}
    with pytest.raises(KeyRingError, match="already has a key 'b'"):
        rotate(live, "b")
    with pytest.raises(KeyRingError, match="no key 'zz' to activate"):
        activate(live, "zz")


def test_default_key_ids_do_not_collide() -> None:
    ring = new_key_ring()
    rotated = KeyRing.from_json(rotate(ring))
    assert len(rotated.keys) == 2 and rotated.active != KeyRing.from_json(ring).active


async def test_a_key_added_by_another_process_is_picked_up() -> None:
    """Another process rotated first: the payload names a key this process has not loaded yet."""
    secrets = {"codec-keys": new_key_ring("k1")}

    class SecretStore:  # changed below, as the real store is by `chimera codec rotate` elsewhere
        def get(self, name: str) -> str | None:
            return secrets.get(name)

    codec = codec_for(settings(payload_encryption="on"), SecretStore())
    assert codec is not None
    secrets["codec-keys"] = rotate(secrets["codec-keys"], "k2")
    newer = await EncryptionCodec(KeyRing.from_json(secrets["codec-keys"])).encode(
        await pydantic_data_converter.encode(["from the other process"])
    )
    decoded = await codec.decode(newer)
    assert pydantic_data_converter.payload_converter.from_payloads(decoded, [str]) == ["from the other process"]
    assert codec.ring.active == "k2"


# --- tampering -------------------------------------------------------------------------------


async def encrypted_one(codec: EncryptionCodec) -> Payload:
    return (await codec.encode(await pydantic_data_converter.encode([campaign_input()])))[0]


async def test_tampered_ciphertext_fails_naming_the_key() -> None:
    codec = EncryptionCodec(ring_of("k1"))
    payload = await encrypted_one(codec)
    flipped = bytearray(payload.data)
    flipped[20] ^= 0x01
    payload.data = bytes(flipped)
    with pytest.raises(CodecError, match="key 'k1' failed authentication"):
        await codec.decode([payload])


async def test_swapped_key_id_metadata_fails() -> None:
    """Both keys are in the ring, but the payload claims the other one: its associated data no longer matches."""
    ring = ring_of("k1", "k2", active="k1")
    payload = await encrypted_one(EncryptionCodec(ring))
    payload.metadata[KEY_ID_HEADER] = b"k2"
    with pytest.raises(CodecError, match="key 'k2' failed authentication"):
        await EncryptionCodec(ring).decode([payload])


async def test_same_key_under_another_id_still_fails() -> None:
    """Associated data binds the key id: relabelling a key does not let a payload pass as the other id's."""
    key = os.urandom(32)
    payload = await encrypted_one(EncryptionCodec(KeyRing(active="k1", keys={"k1": key})))
    payload.metadata[KEY_ID_HEADER] = b"k2"
    with pytest.raises(CodecError, match="failed authentication"):
        await EncryptionCodec(KeyRing(active="k2", keys={"k2": key})).decode([payload])


async def test_an_unknown_key_id_is_named_without_key_material() -> None:
    ring = ring_of("k1")
    payload = await encrypted_one(EncryptionCodec(ring))
    other = ring_of("k9")
    with pytest.raises(CodecError, match=r"key 'k1', which is not in this process's key ring \(keys: \['k9'\]\)") as e:
        await EncryptionCodec(other).decode([payload])
    assert base64.b64encode(other.keys["k9"]).decode() not in str(e.value)


async def test_truncated_and_unlabelled_payloads() -> None:
    codec = EncryptionCodec(ring_of("k1"))
    with pytest.raises(CodecError, match="truncated"):
        await codec.decode([Payload(metadata={"encoding": ENCODING, KEY_ID_HEADER: b"k1"}, data=b"short")])
    with pytest.raises(CodecError, match="no 'encryption-key-id'"):
        await codec.decode([Payload(metadata={"encoding": ENCODING}, data=b"x" * 40)])


def test_reprs_hold_no_key_material() -> None:
    ring = ring_of("k1")
    secret = base64.b64encode(ring.keys["k1"]).decode()
    for text in (repr(ring), repr(EncryptionCodec(ring)), str(ring)):
        assert secret not in text and ring.keys["k1"].hex() not in text
    assert repr(ring) == "KeyRing(active='k1')"


# --- the key ring's format -------------------------------------------------------------------

GOOD = base64.b64encode(b"\x01" * 32).decode()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "must be a JSON object"),
        (json.dumps({"keys": {"a": GOOD}}), "'active' must name"),
        (json.dumps({"active": "a", "keys": {}}), "'keys' must be a non-empty object"),
        (json.dumps({"active": "a", "keys": {"a": GOOD}, "extra": 1}), "unknown fields \\['extra'\\]"),
        (json.dumps({"active": "b", "keys": {"a": GOOD}}), "active key 'b' is not among the keys \\['a'\\]"),
        (json.dumps({"active": "a", "keys": {"a": "!!not base64!!"}}), "key 'a' is not valid base64"),
        (json.dumps({"active": "a", "keys": {"a": base64.b64encode(b"short").decode()}}), "key 'a' is 5 bytes"),
        (json.dumps({"active": "a", "keys": {"a": 42}}), "key 'a' must be a base64 string"),
        (json.dumps({"active": "a b", "keys": {"a b": GOOD}}), "key id 'a b' must be"),
    ],
)
def test_bad_key_rings_are_refused_clearly(text: str, problem: str) -> None:
    with pytest.raises(KeyRingError, match=problem) as caught:
        KeyRing.from_json(text)
    assert GOOD not in str(caught.value)


def test_the_documented_format_loads() -> None:
    k1, k2 = base64.b64encode(os.urandom(32)).decode(), base64.b64encode(os.urandom(32)).decode()
    ring = KeyRing.from_json(json.dumps({"active": "2026-12", "keys": {"2026-11": k1, "2026-12": k2}}))
    assert ring.active == "2026-12" and ring.keys["2026-11"] == base64.b64decode(k1)
    assert KeyRing.from_json(ring.to_json()) == ring


# --- settings: off, auto, on -----------------------------------------------------------------


def test_encryption_modes() -> None:
    with_ring = StaticSecrets({"codec-keys": new_key_ring("k1")})
    nothing = StaticSecrets({})
    assert load_key_ring(settings(payload_encryption="off"), with_ring) is None
    assert load_key_ring(settings(payload_encryption="auto"), nothing) is None
    assert load_key_ring(settings(payload_encryption="auto"), with_ring) is not None
    with pytest.raises(CodecError, match="payload_encryption is 'on' but the secret 'codec-keys'"):
        load_key_ring(settings(payload_encryption="on"), nothing)
    custom = StaticSecrets({"temporal/keys": new_key_ring("k1")})
    assert load_key_ring(settings(payload_encryption="on", codec_keys_secret="temporal/keys"), custom) is not None


def test_a_broken_ring_is_an_error_even_in_auto() -> None:
    with pytest.raises(KeyRingError, match="not valid JSON"):
        load_key_ring(settings(payload_encryption="auto"), StaticSecrets({"codec-keys": "oops"}))


def test_no_ring_means_the_plain_converter() -> None:
    assert data_converter(settings(), StaticSecrets({})) is pydantic_data_converter
    encrypted = data_converter(settings(), StaticSecrets({"codec-keys": new_key_ring("k1")}))
    assert isinstance(encrypted.payload_codec, EncryptionCodec)
    assert encrypted.payload_converter_class is pydantic_data_converter.payload_converter_class
