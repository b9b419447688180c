"""A loopback stand-in for the CDP v2 REST API (Coinbase server wallets), driven through the real cdp-sdk.

It answers in the shapes of cdp-sdk's generated OpenAPI client (cdp/openapi_client/models): EvmAccount,
ListEvmTokenBalances200Response, RequestEvmFaucet200Response, {"transactionHash"} and the Error object
`{"errorType", "errorMessage", "correlationId", "errorLink"}`. Like CDP it holds every account's key itself:
a send decodes the unsigned EIP-1559 transaction, signs it with eth-account and submits it to a real node
(anvil), so balances and receipts are real. The nonce is used as sent; zero gas or fees are filled in.

It checks what CDP checks: the API-key bearer JWT against the test key's public key (its `uris` claim naming
this request), the X-Wallet-Auth JWT (ES256, wallet secret) on account writes with the body's `reqHash`, and
X-Idempotency-Key (a UUID v4; the same key and body replay the first response, another body is 422
idempotency_error). Faults: `fail_status` answers every request with that 5xx; `lose_responses` processes that
many sends and closes the connection instead of answering; `refuse_sends` answers them 400 policy_violation.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import rlp  # type: ignore[import-untyped]
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from web3 import Web3
from web3.types import Wei

from tests.helpers.fake_http import JsonHandler

ERRORS_URL = "https://docs.cdp.coinbase.com/api-reference/v2/errors"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,34}[A-Za-z0-9]$")
ADDRESS_PATTERN = re.compile(r"^0x[0-9a-fA-F]{40}$")
NATIVE = "0xEeeeeEeeeEeEeeEeEeEeeEEEeeeeEeeeeeeeEEeE"
BALANCE_OF = "0x70a08231"  # balanceOf(address)
FAULT_TYPES = {500: "internal_server_error", 502: "bad_gateway", 503: "service_unavailable"}
PREFIX = "/platform"  # the SDK's base path ends in /platform, as https://api.cdp.coinbase.com/platform


@dataclass(frozen=True)
class TestKeys:
    """A CDP API key (Ed25519, as the portal issues: base64 of seed || public key) and a wallet secret (base64
    DER of a P-256 private key), with the public halves the fake verifies against."""

    __test__ = False

    api_key_id: str
    api_key_secret: str
    wallet_secret: str
    api_public: ed25519.Ed25519PublicKey
    wallet_public: ec.EllipticCurvePublicKey

    @classmethod
    def generate(cls) -> TestKeys:
        api = ed25519.Ed25519PrivateKey.generate()
        seed = api.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        public = api.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        wallet = ec.generate_private_key(ec.SECP256R1())
        der = wallet.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return cls(
            api_key_id=str(uuid.uuid4()),
            api_key_secret=base64.b64encode(seed + public).decode(),
            wallet_secret=base64.b64encode(der).decode(),
            api_public=api.public_key(),
            wallet_public=wallet.public_key(),
        )


@dataclass
class FakeNetwork:
    rpc_url: str
    chain_id: int
    usdc: str  # the ERC-20 whose balance token-balances reports


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None


@dataclass
class FakeCdp:
    keys: TestKeys
    networks: dict[str, FakeNetwork]
    base_url: str = ""
    requests: list[Received] = field(default_factory=list)
    fail_status: int | None = None  # answer everything with this status (500, 503, ...)
    lose_responses: int = 0  # process this many sends, then drop the connection instead of answering
    refuse_sends: bool = False  # answer sends with 400 policy_violation, as a CDP policy would
    sent: list[str] = field(default_factory=list)  # hashes of the transactions the fake signed and submitted
    _accounts: dict[str, tuple[str | None, LocalAccount, str]] = field(default_factory=dict)  # lower address ->
    _names: dict[str, str] = field(default_factory=dict)  # name -> lower address
    _replies: dict[str, tuple[str, int, dict[str, Any]]] = field(default_factory=dict)  # idempotency key ->
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def account_keys(self) -> list[bytes]:
        """The private keys the fake holds (tests check none of them ever reaches Chimera's files)."""
        return [bytes(acct.key) for _, acct, _ in self._accounts.values()]

    def account_names(self) -> dict[str, str]:
        return dict(self._names)

    def sends(self) -> list[Received]:
        return [r for r in self.requests if r.path.endswith("/send/transaction")]


def _error(status: int, kind: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {
        "errorType": kind,
        "errorMessage": message,
        "correlationId": uuid.uuid4().hex[:16] + "-IAD",
        "errorLink": f"{ERRORS_URL}#{kind}",
    }


def _account_json(name: str | None, acct: LocalAccount, created: str) -> dict[str, Any]:
    body: dict[str, Any] = {"address": acct.address, "policies": [], "createdAt": created, "updatedAt": created}
    if name is not None:
        body["name"] = name
    return body


def _canonical(body: dict[str, Any] | None) -> str:
    return json.dumps(body or {}, separators=(",", ":"), sort_keys=True)


class _Refused(Exception):
    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.reply = _error(status, kind, message)


class _Handler(JsonHandler):
    api: FakeCdp
    protocol_version = "HTTP/1.1"  # keep-alive, as CDP: a dropped connection is then a lost response

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
        body = json.loads(raw) if raw else None
        split = urlsplit(self.path)
        path = split.path.removeprefix(PREFIX)
        self.api.requests.append(Received(method, path, dict(self.headers.items()), body))
        if self.api.fail_status is not None:
            kind = FAULT_TYPES.get(self.api.fail_status, "internal_server_error")
            self._send(*_error(self.api.fail_status, kind, "The service is unavailable."))
            return
        try:
            self._authenticate(method, split.path, path, body)
            with self.api._lock:  # one request at a time: idempotency and nonces stay simple
                status, reply = self._idempotent(method, path, body, parse_qs(split.query))
                lose = path.endswith("/send/transaction") and status == 200 and self.api.lose_responses > 0
                if lose:
                    self.api.lose_responses -= 1
        except _Refused as refused:
            self._send(*refused.reply)
            return
        if lose:
            self.close_connection = True  # processed, but the caller never hears of it
            return
        self._send(status, reply)

    # -- what CDP checks before anything else --------------------------------------------------------

    def _authenticate(self, method: str, full_path: str, path: str, body: dict[str, Any] | None) -> None:
        keys = self.api.keys
        uri = f"{method} {self.headers.get('Host', '')}{full_path}"
        bearer = self.headers.get("Authorization", "")
        if not bearer.startswith("Bearer "):
            raise _Refused(401, "unauthorized", "Missing API key JWT in the Authorization header.")
        try:
            claims = jwt.decode(bearer.removeprefix("Bearer "), keys.api_public, algorithms=["EdDSA", "ES256"])
            header = jwt.get_unverified_header(bearer.removeprefix("Bearer "))
        except jwt.InvalidTokenError as exc:
            raise _Refused(401, "unauthorized", f"Invalid API key JWT: {exc}.") from None
        if claims.get("sub") != keys.api_key_id or header.get("kid") != keys.api_key_id or claims.get("iss") != "cdp":
            raise _Refused(401, "unauthorized", "Unknown API key.")
        if uri not in claims.get("uris", []):
            raise _Refused(401, "unauthorized", "The API key JWT was not issued for this request.")
        if method == "POST" and "/accounts" in path:
            wallet = self.headers.get("X-Wallet-Auth")
            if not wallet:
                raise _Refused(401, "unauthorized", "Missing X-Wallet-Auth header.")
            try:
                signed = jwt.decode(wallet, keys.wallet_public, algorithms=["ES256"])
            except jwt.InvalidTokenError as exc:
                raise _Refused(401, "unauthorized", f"Invalid wallet authentication: {exc}.") from None
            if uri not in signed.get("uris", []):
                raise _Refused(401, "unauthorized", "The wallet JWT was not issued for this request.")
            if body and signed.get("reqHash") != hashlib.sha256(_canonical(body).encode()).hexdigest():
                raise _Refused(401, "unauthorized", "The wallet JWT does not match the request body.")

    def _idempotent(
        self, method: str, path: str, body: dict[str, Any] | None, query: dict[str, list[str]]
    ) -> tuple[int, dict[str, Any]]:
        key = self.headers.get("X-Idempotency-Key")
        if method != "POST" or key is None:
            return self._route(method, path, body, query)
        try:
            valid = uuid.UUID(key).version == 4 and str(uuid.UUID(key)) == key.lower()
        except ValueError:
            valid = False
        if not valid:
            raise _Refused(400, "invalid_request", "X-Idempotency-Key must be a valid UUID v4 string.")
        fingerprint = f"{method} {path} {_canonical(body)}"
        known = self.api._replies.get(key)
        if known is not None:
            if known[0] != fingerprint:
                raise _Refused(422, "idempotency_error", "The idempotency key was used with different parameters.")
            return known[1], known[2]
        status, reply = self._route(method, path, body, query)
        self.api._replies[key] = (fingerprint, status, reply)
        return status, reply

    # -- the endpoints -------------------------------------------------------------------------------

    def _route(
        self, method: str, path: str, body: dict[str, Any] | None, query: dict[str, list[str]]
    ) -> tuple[int, dict[str, Any]]:
        parts = path.strip("/").split("/")
        if method == "POST" and parts == ["v2", "evm", "accounts"]:
            return self._create(body or {})
        if method == "GET" and parts[:4] == ["v2", "evm", "accounts", "by-name"] and len(parts) == 5:
            address = self.api._names.get(parts[4])
            return self._account(address) if address else _error(404, "not_found", f"No account named {parts[4]}.")
        if method == "GET" and parts[:3] == ["v2", "evm", "accounts"] and len(parts) == 4:
            return self._account(parts[3].lower())
        if method == "POST" and parts[:3] == ["v2", "evm", "accounts"] and parts[4:] == ["send", "transaction"]:
            return self._send_transaction(parts[3].lower(), body or {})
        if method == "GET" and parts[:4] == ["v2", "data", "evm", "token-balances"] and len(parts) == 6:
            return self._balances(parts[4], parts[5], query)
        if method == "POST" and parts == ["v2", "evm", "faucet"]:
            return self._faucet(body or {})
        return _error(404, "not_found", f"No route for {method} {path}.")

    def _create(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        name = body.get("name")
        if name is not None and (not isinstance(name, str) or not NAME_PATTERN.match(name)):
            return _error(
                400,
                "invalid_request",
                "request body has an error: doesn't match schema: Error at \"name\": string doesn't match the "
                'regular expression "^[A-Za-z0-9][A-Za-z0-9-]{0,34}[A-Za-z0-9]$"',
            )
        if name is not None and name in self.api._names:
            return _error(409, "already_exists", f"An EVM account named {name} already exists.")
        acct: LocalAccount = Account.create()
        created = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        self.api._accounts[acct.address.lower()] = (name, acct, created)
        if name is not None:
            self.api._names[name] = acct.address.lower()
        return 201, _account_json(name, acct, created)

    def _account(self, address: str) -> tuple[int, dict[str, Any]]:
        found = self.api._accounts.get(address)
        if found is None:
            return _error(404, "not_found", f"EVM account with address {address} not found.")
        return 200, _account_json(*found)

    def _network(self, name: str) -> FakeNetwork:
        found = self.api.networks.get(name)
        if found is None:
            raise _Refused(400, "invalid_request", f"Unsupported network: {name}.")
        return found

    def _send_transaction(self, address: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        found = self.api._accounts.get(address)
        if found is None:
            return _error(404, "not_found", f"EVM account with address {address} not found.")
        if self.api.refuse_sends:
            return _error(400, "policy_violation", "The transaction violates a policy of the project.")
        network = self._network(str(body.get("network")))
        try:
            tx = _decode_unsigned(str(body.get("transaction", "")))
        except (ValueError, rlp.DecodingError) as exc:
            return _error(400, "malformed_transaction", f"Malformed unsigned transaction: {exc}")
        w3 = Web3(Web3.HTTPProvider(network.rpc_url))
        sender = found[1]
        tx["chainId"] = network.chain_id  # CDP ignores the transaction's own chainId
        if not tx["maxFeePerGas"]:
            base = int(w3.eth.get_block("latest").get("baseFeePerGas", 0))
            tx["maxPriorityFeePerGas"] = tx["maxPriorityFeePerGas"] or 1_000_000
            tx["maxFeePerGas"] = 2 * base + tx["maxPriorityFeePerGas"]
        if not tx["gas"]:
            tx["gas"] = w3.eth.estimate_gas({"from": sender.address, "to": tx["to"], "data": tx["data"]})
        signed = sender.sign_transaction(tx)
        try:
            tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction).to_0x_hex()
        except ValueError as exc:  # the node's refusal (web3's Web3RPCError is a ValueError)
            return _error(400, "invalid_request", f"The transaction was rejected by the network: {exc}")
        self.api.sent.append(tx_hash)
        return 200, {"transactionHash": tx_hash}

    def _balances(self, network_name: str, address: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if not ADDRESS_PATTERN.match(address):
            return _error(400, "invalid_request", f"Invalid address: {address}.")
        network = self._network(network_name)
        w3 = Web3(Web3.HTTPProvider(network.rpc_url))
        owner = Web3.to_checksum_address(address)
        native = int(w3.eth.get_balance(owner))
        call = HexStr(BALANCE_OF + owner[2:].lower().rjust(64, "0"))
        usdc = int.from_bytes(w3.eth.call({"to": Web3.to_checksum_address(network.usdc), "data": call}), "big")
        entries = []
        for contract, amount, decimals, symbol, name in (
            (NATIVE, native, 18, "ETH", "Ether"),
            (network.usdc, usdc, 6, "USDC", "USD Coin"),
        ):
            if amount:  # CDP lists what an address holds
                entries.append(
                    {
                        "amount": {"amount": str(amount), "decimals": decimals},
                        "token": {"network": network_name, "symbol": symbol, "name": name, "contractAddress": contract},
                    }
                )
        size = int(query.get("pageSize", ["20"])[0])
        start = int(query.get("pageToken", ["0"])[0])
        page = entries[start : start + size]
        reply: dict[str, Any] = {"balances": page}
        if start + size < len(entries):
            reply["nextPageToken"] = str(start + size)
        return 200, reply

    def _faucet(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        network = self._network(str(body.get("network")))
        if body.get("token") != "eth" or not ADDRESS_PATTERN.match(str(body.get("address"))):
            return _error(400, "invalid_request", "This faucet sends only eth to a 0x address.")
        w3 = Web3(Web3.HTTPProvider(network.rpc_url))
        to = Web3.to_checksum_address(str(body["address"]))
        tx_hash = w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": to, "value": Wei(10**15)}).to_0x_hex()
        return 200, {"transactionHash": tx_hash}


def _decode_unsigned(hex_tx: str) -> dict[str, Any]:
    """An unsigned EIP-1559 transaction, 0x02 || RLP([chainId, nonce, tip, maxFee, gas, to, value, data,
    accessList]), as cdp-sdk serializes it (with zero v, r, s appended)."""
    raw = bytes.fromhex(hex_tx.removeprefix("0x"))
    if not raw or raw[0] != 2:
        raise ValueError("not an EIP-1559 (type 2) transaction")
    items = rlp.decode(raw[1:])
    if not isinstance(items, list) or len(items) not in (9, 12):
        raise ValueError("an EIP-1559 transaction has 9 fields (12 with a signature)")

    def number(b: Any) -> int:
        return int.from_bytes(bytes(b), "big")

    if len(bytes(items[5])) != 20:
        raise ValueError("the transaction has no 20-byte recipient")
    return {
        "type": 2,
        "chainId": number(items[0]),
        "nonce": number(items[1]),
        "maxPriorityFeePerGas": number(items[2]),
        "maxFeePerGas": number(items[3]),
        "gas": number(items[4]),
        "to": Web3.to_checksum_address(bytes(items[5])),
        "value": number(items[6]),
        "data": "0x" + bytes(items[7]).hex(),
        "accessList": [],
    }


@contextmanager
def fake_cdp(keys: TestKeys, networks: dict[str, FakeNetwork]) -> Iterator[FakeCdp]:
    """A FakeCdp on a free loopback port; its base_url (with /platform, as the SDK's default) is set."""
    api = FakeCdp(keys, networks)
    handler = type("Handler", (_Handler,), {"api": api})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    api.base_url = f"http://127.0.0.1:{httpd.server_address[1]}{PREFIX}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
