"""Secrets sources: environment variables, mounted files (a Kubernetes secret volume's layout), the chain."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chimera.secrets import ChainedSecrets, EnvSecrets, FileSecrets, SecretsError, StaticSecrets, secret_source
from chimera.secrets.env import env_name
from chimera.secrets.files import file_name
from chimera.settings import Settings


@pytest.fixture(autouse=True)
def no_secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets: no CHIMERA_SECRET_* or secrets settings from the machine."""
    for name in list(os.environ):
        if name.startswith("CHIMERA_SECRET") or name.startswith("CHIMERA_AWS_SECRETS"):
            monkeypatch.delenv(name)


# --- environment -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "variable"),
    [
        ("platform/twitter/mira", "CHIMERA_SECRET_PLATFORM_TWITTER_MIRA"),
        ("codec-keys", "CHIMERA_SECRET_CODEC_KEYS"),
        ("smtp.password", "CHIMERA_SECRET_SMTP_PASSWORD"),
        ("Meta App/secret#2", "CHIMERA_SECRET_META_APP_SECRET_2"),
    ],
)
def test_env_names(name: str, variable: str) -> None:
    assert env_name(name) == variable


def test_env_secret_is_read_at_each_get(monkeypatch: pytest.MonkeyPatch) -> None:
    source = EnvSecrets()
    assert source.get("platform/twitter/mira") is None
    monkeypatch.setenv("CHIMERA_SECRET_PLATFORM_TWITTER_MIRA", "tok-1")
    assert source.get("platform/twitter/mira") == "tok-1"
    monkeypatch.setenv("CHIMERA_SECRET_PLATFORM_TWITTER_MIRA", "")
    assert source.get("platform/twitter/mira") is None  # empty is unset


def test_env_from_a_given_mapping() -> None:
    assert EnvSecrets({"CHIMERA_SECRET_A_B": "x"}).get("a/b") == "x"
    assert "x" not in repr(EnvSecrets({"CHIMERA_SECRET_A_B": "x"}))


# --- files -----------------------------------------------------------------------------------


def kubernetes_volume(root: Path, values: dict[str, str], generation: str = "..2026_12_01_10_00_00.1") -> None:
    """Lay out files as the kubelet does: a timestamped directory, `..data` pointing at it, and each key a
    symlink through `..data`; an update writes a new directory and swaps `..data` atomically."""
    version = root / generation
    version.mkdir(parents=True)
    for key, value in values.items():
        (version / key).write_text(value)
    tmp = root / "..data_tmp"
    tmp.symlink_to(generation)
    tmp.replace(root / "..data")
    for key in values:
        link = root / key
        if not link.is_symlink():
            link.symlink_to(Path("..data") / key)


def test_file_names() -> None:
    assert file_name("platform/twitter/mira") == "platform.twitter.mira"
    assert file_name("codec-keys") == "codec-keys"


def test_a_file_per_key_with_one_trailing_newline_stripped(tmp_path: Path) -> None:
    kubernetes_volume(tmp_path, {"codec-keys": '{"a": 1}\n', "platform.twitter.mira": "tok\n\n", "empty": ""})
    source = FileSecrets(tmp_path)
    assert source.get("codec-keys") == '{"a": 1}'
    assert source.get("platform/twitter/mira") == "tok\n"  # one newline only: the value may end in one
    assert source.get("empty") is None
    assert source.get("missing") is None


def test_a_secret_updated_in_place_is_read_anew(tmp_path: Path) -> None:
    kubernetes_volume(tmp_path, {"api-key": "old"})
    source = FileSecrets(tmp_path)
    assert source.get("api-key") == "old"
    kubernetes_volume(tmp_path, {"api-key": "new"}, generation="..2026_12_02_10_00_00.2")
    assert source.get("api-key") == "new"


@pytest.mark.parametrize(
    "name", ["../etc/passwd", "/etc/passwd", "a/../../b", "..data", ".hidden", "a//b", "a/./b", "with space", ""]
)
def test_names_that_could_leave_the_directory_are_refused(tmp_path: Path, name: str) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "passwd").write_text("outside")
    with pytest.raises(SecretsError, match="cannot be a secret file"):
        FileSecrets(tmp_path / "secrets").get(name)


def test_a_symlink_out_of_the_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "outside").write_text("not a secret of ours")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "api-key").symlink_to(tmp_path / "outside")
    with pytest.raises(SecretsError, match="points outside"):
        FileSecrets(tmp_path / "secrets").get("api-key")


def test_a_missing_directory_is_an_error_not_an_absent_secret(tmp_path: Path) -> None:
    with pytest.raises(SecretsError, match="does not exist"):
        FileSecrets(tmp_path / "nope").get("api-key")


def test_a_file_that_is_not_text(tmp_path: Path) -> None:
    (tmp_path / "blob").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SecretsError, match="not UTF-8") as caught:
        FileSecrets(tmp_path).get("blob")
    assert "\\xff" not in str(caught.value)


# --- the chain -------------------------------------------------------------------------------


def test_the_first_source_that_has_the_name_wins() -> None:
    chain = ChainedSecrets([StaticSecrets({"a": "first"}), StaticSecrets({"a": "second", "b": "only-b"})])
    assert chain.get("a") == "first"
    assert chain.get("b") == "only-b"
    assert chain.get("c") is None


def test_chain_repr_lists_kinds_only(tmp_path: Path) -> None:
    chain = ChainedSecrets([EnvSecrets(), FileSecrets(tmp_path), StaticSecrets({"k": "hunter2"})])
    assert repr(chain) == "ChainedSecrets(env, files, StaticSecrets)"


def test_secret_source_env_over_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kubernetes_volume(tmp_path, {"codec-keys": "from-file", "smtp.password": "file-pw"})
    source = secret_source(Settings(secrets_dir=tmp_path))
    assert repr(source) == "ChainedSecrets(env, files)"
    assert source.get("codec-keys") == "from-file"
    monkeypatch.setenv("CHIMERA_SECRET_CODEC_KEYS", "from-env")
    assert source.get("codec-keys") == "from-env"
    assert source.get("smtp/password") == "file-pw"


def test_secret_source_adds_aws_only_when_configured() -> None:
    assert repr(secret_source(Settings())) == "ChainedSecrets(env)"
    assert repr(secret_source(Settings(aws_secrets_region="eu-west-1"))) == "ChainedSecrets(env, aws)"
    assert repr(secret_source(Settings(aws_secrets_prefix="chimera/"))) == "ChainedSecrets(env, aws)"


def test_settings_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHIMERA_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("CHIMERA_AWS_SECRETS_PREFIX", "chimera/")
    settings = Settings()
    assert settings.secrets_dir == tmp_path and settings.aws_secrets_prefix == "chimera/"
    assert settings.secrets_cache_seconds == 300
