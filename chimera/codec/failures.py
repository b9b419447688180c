"""Failures under encryption: messages and stack traces travel in an encrypted payload, so the server sees
neither; the SDK decodes them back for workflows and clients.

The codec's own errors stay plain: a worker that cannot decrypt a payload must be able to say why in the
workflow task failure (their messages name key ids, never keys or payload contents)."""

from __future__ import annotations

from temporalio.api.failure.v1 import Failure
from temporalio.converter import DefaultFailureConverter, PayloadConverter

from chimera.codec.errors import CodecError


class EncryptedFailureConverter(DefaultFailureConverter):
    def __init__(self) -> None:
        super().__init__(encode_common_attributes=True)
        self._plain = DefaultFailureConverter()

    def to_failure(self, exception: BaseException, payload_converter: PayloadConverter, failure: Failure) -> None:
        if isinstance(exception, CodecError):
            self._plain.to_failure(exception, payload_converter, failure)
        else:
            super().to_failure(exception, payload_converter, failure)
