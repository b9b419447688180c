"""Alerts to real receivers on loopback (chimera/alerts): a webhook receiver that verifies the HMAC signature with
chimera.alerts.webhook.verify_signature, an aiosmtpd SMTP server (plain, STARTTLS, implicit TLS, login), and the
dispatcher's idempotency on the SQL delivery store (SQLite here; PostgreSQL at the end)."""

from __future__ import annotations

import email
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import httpx2 as httpx
import psycopg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from chimera.alerts.config import SmtpNotifierConfig, WebhookNotifierConfig
from chimera.alerts.dispatch import AlertDispatcher, AlertNotDelivered, MemoryDeliveryStore, notifiers_from
from chimera.alerts.errors import (
    InvalidSignature,
    MissingSignature,
    NotifierConfigError,
    NotifierError,
    SignatureError,
    StaleTimestamp,
)
from chimera.alerts.smtp import SmtpNotifier
from chimera.alerts.webhook import (
    ALERT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookNotifier,
    sign,
    slack_body,
    verify_signature,
)
from chimera.db import StateStore
from chimera.db.alerts import SqlDeliveryStore, agent_rates
from chimera.db.engine import Database
from chimera.secrets.base import StaticSecrets
from schemas.alerts import Alert, budget_exhausted_alert, stop_alert
from schemas.models import CostLine
from tests.helpers.servers import free_port
from tests.integration.test_store_postgres import (  # noqa: F401  # fixtures, used by name
    PgDatabase,
    pg,
    pg_available,
    super_connect,
)
from tests.unit.test_store import AGENT, TENANT, FakeClock, make_spec, ref

SECRET = "whsec-test-7f3a9c"
PASSWORD = "smtp-pw-91d2"
TOKEN_PATH = "/hooks/T000/B000/tokenXYZ"  # a Slack-like URL: its path is a credential
RAISED_AT = "2026-12-01T15:20:00+00:00"

# The plain SMTP server allows login without TLS (loopback only): aiosmtpd warns about it.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


def fleet_stop(request_id: str = "req-1") -> Alert:
    return stop_alert(scope="fleet", request_id=request_id, actor="ops@acme", reason="bad outputs", raised_at=RAISED_AT)


def budget_alert() -> Alert:
    return budget_exhausted_alert(
        tenant_id="acme",
        campaign_id="launch",
        agent_id="mira",
        level="campaign",
        day="2026-12-01",
        reason="daily budget $5.00 reached",
        raised_at=RAISED_AT,
    )


# ---- a webhook receiver on loopback ---------------------------------------------------------


@dataclass
class Receiver:
    """What the receiver saw: deliveries it accepted, refusals (with the reason), and how to answer."""

    url: str
    accepted: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    refused: list[type[SignatureError]] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            time.sleep(receiver.delay)
            try:
                verify_signature(
                    SECRET,
                    self.headers.get(TIMESTAMP_HEADER),
                    body,
                    self.headers.get(SIGNATURE_HEADER),
                    now=time.time(),
                )
            except SignatureError as exc:
                receiver.refused.append(type(exc))
                return self._answer(401)
            if receiver.status < 300:
                receiver.accepted.append((dict(self.headers.items()), json.loads(body)))
            self._answer(receiver.status)

        def _answer(self, status: int) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (the timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    port = free_port()
    rec = Receiver(url=f"http://127.0.0.1:{port}{TOKEN_PATH}")
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(rec))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def webhook(url: str, name: str = "ops-hook", secret: str = SECRET, **changes: Any) -> WebhookNotifier:
    clock = changes.pop("clock", time.time)
    config = WebhookNotifierConfig(name=name, url=url, secret_name="alerts/ops-hook", **changes)
    return WebhookNotifier(config, secret, clock=clock)


async def test_the_webhook_delivers_a_signed_slack_shaped_body(receiver: Receiver) -> None:
    alert = fleet_stop()
    await webhook(receiver.url).send(alert)
    assert receiver.refused == []
    [(headers, body)] = receiver.accepted
    assert headers[ALERT_ID_HEADER] == "stop:fleet:req-1"
    assert body["text"] == ":rotating_light: [critical] Emergency stop: fleet"
    header, section, context = body["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": "Emergency stop: fleet", "emoji": True}}
    assert section["type"] == "section" and section["text"] == {"type": "mrkdwn", "text": "bad outputs"}
    assert {"type": "mrkdwn", "text": "*by*\nops@acme"} in section["fields"]
    assert context["type"] == "context" and "critical stop" in context["elements"][0]["text"]
    assert Alert.model_validate(body["alert"]) == alert  # the alert itself, whole, for non-Slack receivers


def test_the_slack_body_escapes_what_people_wrote() -> None:
    alert = stop_alert(
        scope="fleet", request_id="r", actor="ops", reason="<!channel> stop & <@U123>", raised_at=RAISED_AT
    )
    body = slack_body(alert)
    assert body["blocks"][1]["text"]["text"] == "&lt;!channel&gt; stop &amp; &lt;@U123&gt;"
    assert body["alert"]["detail"] == "<!channel> stop & <@U123>"  # the alert itself is kept as it was
    long = alert.model_copy(update={"title": "x" * 400, "detail": "y" * 5000})
    header, section, _ = slack_body(long)["blocks"]
    assert len(header["text"]["text"]) == 150 and len(section["text"]["text"]) == 3000


async def test_a_forged_signature_is_refused_by_the_receiver(receiver: Receiver) -> None:
    with pytest.raises(NotifierError) as caught:
        await webhook(receiver.url, secret="not-the-secret").send(fleet_stop())
    assert caught.value.status == 401
    assert receiver.refused == [InvalidSignature] and receiver.accepted == []
    assert "not-the-secret" not in str(caught.value) and "tokenXYZ" not in str(caught.value)


async def test_a_stale_timestamp_is_refused_by_the_receiver(receiver: Receiver) -> None:
    ten_minutes_ago = webhook(receiver.url, clock=lambda: time.time() - 600)
    with pytest.raises(NotifierError) as caught:
        await ten_minutes_ago.send(fleet_stop())
    assert caught.value.status == 401
    assert receiver.refused == [StaleTimestamp] and receiver.accepted == []


async def test_an_unsigned_or_tampered_request_is_refused(receiver: Receiver) -> None:
    body, headers = webhook(receiver.url).signed_request(fleet_stop())
    async with httpx.AsyncClient(timeout=5) as client:
        unsigned = await client.post(receiver.url, content=body, headers={"Content-Type": "application/json"})
        tampered = await client.post(receiver.url, content=body.replace(b"bad outputs", b"all good"), headers=headers)
        replayed = await client.post(receiver.url, content=body, headers=headers)  # the receiver dedupes on the id
    assert (unsigned.status_code, tampered.status_code, replayed.status_code) == (401, 401, 200)
    assert receiver.refused == [MissingSignature, InvalidSignature]


def test_verify_signature_directly() -> None:
    body = b'{"text":"hi"}'
    now = 1_780_000_000
    good = sign(SECRET, now, body)
    verify_signature(SECRET, str(now), body, good, now=now + 299)
    verify_signature(SECRET, str(now), body, f"v1=deadbeef, {good}", now=now)  # rotation: one of several matches
    with pytest.raises(StaleTimestamp):
        verify_signature(SECRET, str(now), body, good, now=now + 301)
    with pytest.raises(StaleTimestamp):
        verify_signature(SECRET, str(now), body, good, now=now - 301)  # from the future
    with pytest.raises(InvalidSignature):
        verify_signature(SECRET, str(now + 1), body, good, now=now)  # the timestamp is signed too
    with pytest.raises(InvalidSignature, match="unix seconds"):
        verify_signature(SECRET, "yesterday", body, good, now=now)
    with pytest.raises(MissingSignature):
        verify_signature(SECRET, str(now), body, None, now=now)
    with pytest.raises(MissingSignature):
        verify_signature(SECRET, "", body, good, now=now)
    assert good == "v1=" + __import__("hmac").new(SECRET.encode(), f"{now}.".encode() + body, "sha256").hexdigest()


async def test_a_receiver_answering_500_is_a_notifier_error(receiver: Receiver) -> None:
    receiver.status = 500
    with pytest.raises(NotifierError, match="answered HTTP 500") as caught:
        await webhook(receiver.url).send(fleet_stop())
    assert caught.value.status == 500 and caught.value.notifier == "ops-hook"
    assert SECRET not in str(caught.value) and "tokenXYZ" not in str(caught.value)


async def test_a_slow_receiver_times_out(receiver: Receiver) -> None:
    receiver.delay = 1.5
    started = time.monotonic()
    with pytest.raises(NotifierError, match=r"no answer from http://127\.0\.0\.1:\d+ within 0\.3 s"):
        await webhook(receiver.url, timeout_seconds=0.3).send(fleet_stop())
    assert time.monotonic() - started < 1.4


async def test_an_unreachable_receiver_is_a_notifier_error() -> None:
    url = f"http://127.0.0.1:{free_port()}{TOKEN_PATH}"  # nothing listens there
    with pytest.raises(NotifierError, match=r"could not deliver to http://127\.0\.0\.1:\d+: ConnectError") as caught:
        await webhook(url).send(fleet_stop())
    assert caught.value.status is None and "tokenXYZ" not in str(caught.value)


# ---- an SMTP receiver on loopback -----------------------------------------------------------


class Inbox:
    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 OK"

    def messages(self) -> list[EmailMessage]:
        return [email.message_from_bytes(e.content, policy=default_policy) for e in self.envelopes]


def _login(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == LoginPassword(b"alerts", PASSWORD.encode())
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself


@dataclass
class Smtp:
    inbox: Inbox
    port: int
    ca_file: Path


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA), and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def _server_context(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_files)
    return context


@contextmanager
def smtp_server(mode: str, tls_files: tuple[Path, Path]) -> Iterator[Smtp]:
    """An aiosmtpd server requiring login: plain (auth allowed without TLS), STARTTLS required, or implicit TLS."""
    inbox, port = Inbox(), free_port()
    options: dict[str, Any] = {"authenticator": _login, "auth_required": True}
    if mode == "plain":
        options["auth_require_tls"] = False
    elif mode == "starttls":
        options |= {"tls_context": _server_context(tls_files), "require_starttls": True}
    else:  # aiosmtpd counts only STARTTLS as TLS for auth_require_tls; this connection is TLS from the start
        options |= {"ssl_context": _server_context(tls_files), "auth_require_tls": False}
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield Smtp(inbox, port, tls_files[0])
    finally:
        controller.stop()


def mail(server: Smtp, mode: str = "plain", **changes: Any) -> SmtpNotifierConfig:
    fields: dict[str, Any] = {
        "name": "ops-mail",
        "host": "127.0.0.1",
        "port": server.port,
        "starttls": mode == "starttls",
        "use_ssl": mode == "ssl",
        "ca_file": server.ca_file,
        "username": "alerts",
        "password_secret": "alerts/smtp",
        "sender": "Chimera <alerts@chimera.example>",
        "recipients": ["oncall@acme.example", "lead@acme.example"],
        **changes,
    }
    return SmtpNotifierConfig(**fields)


@pytest.mark.parametrize("mode", ["plain", "starttls", "ssl"])
async def test_email_reaches_the_smtp_server(mode: str, tls_files: tuple[Path, Path]) -> None:
    with smtp_server(mode, tls_files) as server:
        [notifier] = notifiers_from([mail(server, mode)], StaticSecrets({"alerts/smtp": PASSWORD}))
        alert = budget_alert()
        await notifier.send(alert)
    [envelope] = server.inbox.envelopes
    assert envelope.mail_from == "alerts@chimera.example"
    assert envelope.rcpt_tos == ["oncall@acme.example", "lead@acme.example"]
    [message] = server.inbox.messages()
    assert message["Subject"] == "[Chimera warning] Budget exhausted: campaign acme/launch (campaign limit)"
    assert message["X-Chimera-Alert-Id"] == alert.alert_id
    assert message["To"] == "oncall@acme.example, lead@acme.example"
    body = message.get_content()
    assert "daily budget $5.00 reached" in body
    assert "level:" in body and "campaign" in body and "day:" in body and "2026-12-01" in body
    assert f"alert id:  {alert.alert_id}" in body
    assert PASSWORD not in body


async def test_a_wrong_smtp_password_is_refused(tls_files: tuple[Path, Path]) -> None:
    with smtp_server("plain", tls_files) as server:
        notifier = SmtpNotifier(mail(server), "wrong-password")
        with pytest.raises(NotifierError, match="refused the login") as caught:
            await notifier.send(budget_alert())
    assert caught.value.status == 535 and "wrong-password" not in str(caught.value)
    assert server.inbox.envelopes == []


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
async def test_an_untrusted_smtp_certificate_is_refused(mode: str, tls_files: tuple[Path, Path]) -> None:
    with smtp_server(mode, tls_files) as server:
        notifier = SmtpNotifier(mail(server, mode, ca_file=None), PASSWORD)  # the system's CAs do not know it
        with pytest.raises(NotifierError, match="SSLCertVerificationError"):
            await notifier.send(budget_alert())
    assert server.inbox.envelopes == []


async def test_an_unreachable_smtp_server_is_a_notifier_error(tmp_path: Path) -> None:
    server = Smtp(Inbox(), free_port(), tmp_path / "none.pem")
    notifier = SmtpNotifier(mail(server, ca_file=None, username=None, password_secret=None), None)
    with pytest.raises(NotifierError, match="ConnectionRefusedError"):
        await notifier.send(budget_alert())


# ---- building notifiers ---------------------------------------------------------------------


def test_a_missing_secret_names_the_notifier_and_the_secret(tmp_path: Path) -> None:
    config = {"kind": "webhook", "name": "ops-hook", "url": "https://hooks.example.com/T/B/x", "secret_name": "hook"}
    with pytest.raises(NotifierConfigError, match="notifier 'ops-hook': secret 'hook' is not set"):
        notifiers_from([config], StaticSecrets({}))
    smtp_config = mail(Smtp(Inbox(), 25, tmp_path / "ca.pem"))
    with pytest.raises(NotifierConfigError, match="notifier 'ops-mail': secret 'alerts/smtp' is not set"):
        notifiers_from([smtp_config], StaticSecrets({"hook": SECRET}))


def test_an_invalid_configuration_is_refused_without_echoing_it() -> None:
    bad: list[dict[str, Any]] = [
        {"kind": "webhook", "name": "a", "url": "ftp://hooks.example.com/tokenXYZ", "secret_name": "s"},
        {"kind": "pager", "name": "b"},
        {"kind": "smtp", "name": "a", "host": "h", "sender": "x", "recipients": []},
    ]
    with pytest.raises(NotifierConfigError) as caught:
        notifiers_from(bad, StaticSecrets({}))
    message = str(caught.value)
    assert "notifiers[0.webhook.url]" in message and "tokenXYZ" not in message
    assert "notifiers[1]" in message and "'webhook', 'smtp'" in message
    assert "notifiers[2.smtp.recipients]" in message
    twice = [{"kind": "webhook", "name": "a", "url": "https://h/x", "secret_name": "s"}] * 2
    with pytest.raises(NotifierConfigError, match="two notifiers are named 'a'"):
        notifiers_from(twice, StaticSecrets({"s": SECRET}))


def test_notifiers_never_show_their_secrets(receiver: Receiver) -> None:
    config = {"kind": "webhook", "name": "ops-hook", "url": receiver.url, "secret_name": "hook"}
    [notifier] = notifiers_from([config], StaticSecrets({"hook": SECRET}))
    shown = repr(notifier) + str(getattr(notifier, "config", ""))
    assert SECRET not in shown and "tokenXYZ" not in shown
    assert repr(WebhookNotifierConfig.model_validate(config)).count("tokenXYZ") == 0


# ---- the dispatcher -------------------------------------------------------------------------


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqlDeliveryStore]:
    store = SqlDeliveryStore.from_url(f"sqlite:///{tmp_path / 'chimera.db'}")
    yield store
    store.close()


@pytest.fixture
def inbox_port() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def plain_mail(port: int, **changes: Any) -> SmtpNotifier:
    config = SmtpNotifierConfig(
        name="ops-mail",
        host="127.0.0.1",
        port=port,
        starttls=False,
        sender="alerts@chimera.example",
        recipients=["oncall@acme.example"],
        **changes,
    )
    return SmtpNotifier(config, None)


async def test_a_second_dispatch_of_the_same_alert_sends_nothing(
    receiver: Receiver, inbox_port: tuple[Inbox, int], sqlite_store: SqlDeliveryStore
) -> None:
    inbox, port = inbox_port
    dispatcher = AlertDispatcher([webhook(receiver.url), plain_mail(port)], sqlite_store)
    first = await dispatcher.dispatch(fleet_stop())
    assert first.sent == ["ops-hook", "ops-mail"] and first.failed == []
    again = await dispatcher.dispatch(fleet_stop())
    assert again.sent == [] and again.already_sent == ["ops-hook", "ops-mail"]
    assert len(receiver.accepted) == 1 and len(inbox.envelopes) == 1
    assert sqlite_store.sent_to("stop:fleet:req-1") == ["ops-hook", "ops-mail"]
    # Another stop request is another alert.
    assert (await dispatcher.dispatch(fleet_stop("req-2"))).sent == ["ops-hook", "ops-mail"]
    assert len(receiver.accepted) == 2


async def test_a_failing_notifier_is_reported_and_retried_alone(
    receiver: Receiver, inbox_port: tuple[Inbox, int], sqlite_store: SqlDeliveryStore
) -> None:
    inbox, port = inbox_port
    dispatcher = AlertDispatcher([webhook(receiver.url), plain_mail(port)], sqlite_store)
    receiver.status = 500
    report = await dispatcher.dispatch(fleet_stop())  # one delivered: no raise, the failure is reported
    assert report.sent == ["ops-mail"] and report.failed == ["ops-hook"]
    [failure] = [d for d in report.deliveries if d.status == "failed"]
    assert failure.http_status == 500 and "answered HTTP 500" in (failure.error or "")
    with pytest.raises(AlertNotDelivered) as strict:
        await dispatcher.dispatch(fleet_stop(), strict=True)  # strict: any failure raises
    assert strict.value.report.already_sent == ["ops-mail"] and strict.value.status == 500
    receiver.status = 200
    retried = await dispatcher.dispatch(fleet_stop())
    assert retried.sent == ["ops-hook"] and retried.already_sent == ["ops-mail"]
    assert len(inbox.envelopes) == 1 and len(receiver.accepted) == 1


async def test_when_every_notifier_fails_the_dispatch_raises(
    receiver: Receiver, sqlite_store: SqlDeliveryStore
) -> None:
    receiver.status = 503
    unreachable = plain_mail(free_port())
    dispatcher = AlertDispatcher([webhook(receiver.url), unreachable], sqlite_store)
    with pytest.raises(AlertNotDelivered) as caught:
        await dispatcher.dispatch(fleet_stop())
    assert isinstance(caught.value, NotifierError)
    assert caught.value.report.failed == ["ops-hook", "ops-mail"]
    assert "answered HTTP 503" in str(caught.value) and "ConnectionRefusedError" in str(caught.value)
    assert sqlite_store.sent_to("stop:fleet:req-1") == []
    receiver.status = 200  # the activity's retry: the webhook is back, the mail server still down
    report = await dispatcher.dispatch(fleet_stop())
    assert report.sent == ["ops-hook"] and report.failed == ["ops-mail"]


async def test_kinds_and_min_severity_filter_what_a_notifier_gets(receiver: Receiver) -> None:
    stops_only = webhook(receiver.url, name="stops", kinds=["stop", "stop_lifted"], min_severity="critical")
    dispatcher = AlertDispatcher([stops_only], MemoryDeliveryStore())
    nothing = await dispatcher.dispatch(budget_alert())  # a warning, and not a stop
    assert nothing.deliveries == [] and "no notifier accepts it" in nothing.summary()
    lifted = stop_alert(
        scope="tenant", tenant_id="acme", request_id="r9", actor="ops", reason="fixed", raised_at=RAISED_AT, lifted=True
    )
    assert (await dispatcher.dispatch(lifted)).deliveries == []  # the right kind, but only info
    assert (await dispatcher.dispatch(fleet_stop())).sent == ["stops"]
    assert [body["alert"]["kind"] for _, body in receiver.accepted] == ["stop"]


def test_notifier_names_must_be_unique(receiver: Receiver) -> None:
    with pytest.raises(NotifierConfigError, match="unique"):
        AlertDispatcher([webhook(receiver.url), webhook(receiver.url)], MemoryDeliveryStore())


# ---- the SQL store and the anomaly reader on PostgreSQL (and SQLite) -------------------------


def test_delivery_records_on_postgresql_are_platform_scope(pg: PgDatabase) -> None:  # noqa: F811
    store = SqlDeliveryStore.from_url(pg.app_url)
    try:
        alert = fleet_stop()
        assert not store.was_sent(alert.alert_id, "ops-hook")
        store.mark_sent(alert, "ops-hook")
        store.mark_sent(alert, "ops-hook")  # recording twice keeps one row
        assert store.was_sent(alert.alert_id, "ops-hook") and not store.was_sent(alert.alert_id, "ops-mail")
        assert store.sent_to(alert.alert_id) == ["ops-hook"]
        # A tenant's transaction (or none) neither sees nor forges platform rows.
        db = Database(pg.app_url)
        try:
            for tenant in ("acme", None):
                with db.transaction(tenant, write=False) as s:
                    assert s.execute(text("SELECT count(*) FROM alert_deliveries")).scalar_one() == 0
            with pytest.raises(DBAPIError, match="row-level security"), db.transaction("acme", write=True) as s:
                s.execute(
                    text(
                        "INSERT INTO alert_deliveries VALUES ('stop:fleet:forged', 'ops-hook', 'stop', 'critical', "
                        "NULL, now())"
                    )
                )
        finally:
            db.dispose()
        auditor = psycopg.connect(pg.auditor_url.replace("postgresql+psycopg", "postgresql"))
        with auditor, pytest.raises(psycopg.errors.InsufficientPrivilege):  # it reads the audit chain only
            auditor.execute("SELECT count(*) FROM alert_deliveries")
        assert store.forget_before(datetime.now(UTC) + timedelta(seconds=1)) == 1
        assert not store.was_sent(alert.alert_id, "ops-hook")
    finally:
        store.close()
    with super_connect() as conn:
        policies = conn.execute(
            "SELECT policyname FROM pg_policies WHERE schemaname = %s AND tablename = 'alert_deliveries'", [pg.schema]
        ).fetchall()
    assert policies == [("platform_only",)]


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'chimera.db'}"
    db: PgDatabase = request.getfixturevalue("pg")
    return db.app_url


def test_agent_rates_reads_spend_and_verdicts_by_hour(state_url: str) -> None:
    now = datetime(2026, 12, 1, 15, 20, tzinfo=UTC)
    clock = FakeClock(now)
    store = StateStore(state_url, clock=clock)
    try:
        store.ensure_campaign(make_spec())
        store.ensure_campaign(make_spec(tenant="other"))

        def at(when: datetime, task: str, usd: float, status: str | None, tenant: str = TENANT) -> None:
            clock.now = when
            line = CostLine(key=f"{task}:1:1", tier="post", provider="offline", model="m", cost_usd=usd)
            store.record_costs(ref(task, tenant=tenant), task, [line], "UTC")
            if status:
                store.record_outcome(ref(task, tenant=tenant), "post", status, human_decided=False)

        at(now - timedelta(minutes=10), "t-now-1", 0.50, "rejected")
        at(now - timedelta(minutes=30), "t-now-2", 0.25, "published")
        at(now - timedelta(minutes=40), "t-now-3", 0.25, "failed")  # spend counts; a failure is not a verdict
        at(now - timedelta(hours=5, minutes=1), "t-old", 0.10, "published")
        at(now - timedelta(days=3), "t-first", 0.05, "rejected")
        at(now - timedelta(days=8), "t-ancient", 9.00, "rejected")  # before the lookback
        at(now - timedelta(minutes=5), "t-theirs", 7.00, "rejected", tenant="other")  # another tenant's
    finally:
        store.close()

    db = Database(state_url)
    try:
        h = agent_rates(db, TENANT, AGENT, now)
        other = agent_rates(db, "other", AGENT, now)
    finally:
        db.dispose()
    assert (h.current.spend_usd, h.current.judged, h.current.rejected) == (1.0, 2, 1)
    assert [(b.start, b.spend_usd, b.judged, b.rejected) for b in h.history] == [
        (now - timedelta(days=3, hours=1), 0.05, 1, 1),
        (now - timedelta(hours=6), 0.10, 1, 0),
    ]
    assert h.first_seen == now - timedelta(days=3)
    assert (other.current.spend_usd, other.current.rejected, other.history) == (7.0, 1, [])
