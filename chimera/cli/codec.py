"""`chimera codec keygen|rotate|activate|retire|serve`: the payload encryption keys and the codec server.

The key commands read a key ring on stdin (or --file) and print the new one on stdout, so it goes straight
into the secrets source (e.g. `| aws secretsmanager put-secret-value --secret-id chimera/codec-keys
--secret-string file:///dev/stdin`) and never into a file by accident. See specs/codec.md.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from chimera.cli import render
from chimera.settings import Settings

app = typer.Typer(help="Payload encryption: the codec key ring, and the codec server for the Web UI.")

RingFile = Annotated[Path | None, typer.Option("--file", help="Read the key ring from this file, not stdin.")]
KeyId = Annotated[str | None, typer.Option("--key-id", help="The new key's id (default: the UTC month).")]


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="codec")


@app.command()
def keygen(key_id: KeyId = None) -> None:
    """Print a new key ring with one active key."""
    from chimera.codec import new_key_ring

    _emit(lambda: new_key_ring(key_id))


@app.command()
def rotate(
    file: RingFile = None,
    key_id: KeyId = None,
    inactive: Annotated[bool, typer.Option("--inactive", help="Add the key without making it active yet.")] = False,
) -> None:
    """Print the ring with a fresh key added (and active): old keys stay, so old histories still decrypt."""
    from chimera.codec import rotate as rotated

    ring = _read(file)
    _emit(lambda: rotated(ring, key_id, make_active=not inactive))


@app.command()
def activate(
    key_id: Annotated[str, typer.Argument(help="The key that encrypts from now on.")], file: RingFile = None
) -> None:
    """Print the ring with KEY_ID made the active key (after every process has it, see specs/codec.md)."""
    from chimera.codec import activate as activated

    ring = _read(file)
    _emit(lambda: activated(ring, key_id))


@app.command()
def retire(key_id: Annotated[str, typer.Argument(help="The key to drop.")], file: RingFile = None) -> None:
    """Print the ring without KEY_ID: only once no retained history holds payloads encrypted with it."""
    from chimera.codec import retire as retired

    ring = _read(file)
    _emit(lambda: retired(ring, key_id))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option("--host", help="Default: codec_server_host.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Default: codec_server_port (8234).")] = None,
) -> None:
    """Run the codec server: it decrypts for the Web UI and `temporal --codec-endpoint`, for fleet operators
    who send `Authorization: Bearer $(chimera user token)`."""
    from chimera.access.tokens import directory_authenticator
    from chimera.codec import CodecError
    from chimera.codec.server import serve as run_server
    from chimera.db import StateStore

    settings = Settings()
    store = StateStore.from_settings(settings)

    try:
        asyncio.run(run_server(settings, directory_authenticator(store), host=host, port=port))
    except CodecError as exc:
        render.fail(str(exc))
    except KeyboardInterrupt:
        pass
    finally:
        store.close()


def _read(file: Path | None) -> str:
    if file is not None:
        return file.read_text()
    if sys.stdin.isatty():
        render.fail("pipe the key ring on stdin, or pass --file", render.EXIT_USAGE)
    return sys.stdin.read()


def _emit(make: Callable[[], str]) -> None:
    from chimera.codec import KeyRingError

    try:
        ring = make()
    except KeyRingError as exc:
        render.fail(str(exc))
    typer.echo(ring, nl=False)
