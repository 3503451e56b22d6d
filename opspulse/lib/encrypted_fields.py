"""Every value encrypted with the key ring (opspulse.lib.crypto), listed in one place so
that a key rotation reaches all of them.

Each app registers its encrypted fields when it is ready (its AppConfig.ready); this module
imports no app. `rotate` re-encrypts one field under the current key in small transactions,
skipping what is already under it, so an interrupted rotation is finished by running it again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.db import models, transaction

from opspulse.lib import crypto


@dataclass(frozen=True)
class EncryptedField:
    """Where a kind of encrypted value lives.

    `rows` returns the rows that may hold one; `read` returns a row's ciphertexts ("" for
    none) and `write` puts them back in the same order; `associated_data` is what each was
    encrypted with; `update_fields` are the columns `write` changes.
    """

    name: str
    rows: Callable[[], models.QuerySet]
    read: Callable[[models.Model], list[str]]
    write: Callable[[models.Model, list[str]], None]
    associated_data: Callable[[models.Model], str]
    update_fields: tuple[str, ...]


def column(
    name: str, model: type[models.Model], field: str, associated_data: Callable[[models.Model], str]
) -> EncryptedField:
    """Describe a text column holding one ciphertext (or "")."""
    return EncryptedField(
        name=name,
        rows=lambda: model._default_manager.exclude(**{field: ""}),
        read=lambda row: [getattr(row, field)],
        write=lambda row, values: setattr(row, field, values[0]),
        associated_data=associated_data,
        update_fields=(field,),
    )


_registry: dict[str, EncryptedField] = {}


def register(*fields: EncryptedField) -> None:
    for field in fields:
        _registry[field.name] = field


def registered() -> list[EncryptedField]:
    return sorted(_registry.values(), key=lambda field: field.name)


@dataclass
class Rotation:
    """What a rotation did to one field's rows (a row with no value is not counted)."""

    reencrypted: int = 0
    current: int = 0
    unreadable: int = 0

    def __str__(self) -> str:
        text = f"{self.reencrypted} re-encrypted, {self.current} already current"
        return text + (f", {self.unreadable} cannot be decrypted" if self.unreadable else "")


def rotate(field: EncryptedField, *, batch_size: int = 100) -> Iterator[Rotation]:
    """Re-encrypt the field's values that are not under the current key.

    Yield the running totals after each committed batch of rows. A value that no key of the
    ring decrypts is left as it is and counted as unreadable.
    """
    ring = crypto.key_ring()
    current_kid = next(iter(ring))
    totals = Rotation()
    last_pk = None
    while True:
        with transaction.atomic():
            rows = field.rows().order_by("pk").select_for_update(of=("self",))
            if last_pk is not None:
                rows = rows.filter(pk__gt=last_pk)
            batch = list(rows[:batch_size])
            for row in batch:
                _rotate_row(field, row, ring, current_kid, totals)
        if not batch:
            return
        last_pk = batch[-1].pk
        yield totals
        if len(batch) < batch_size:
            return


def _rotate_row(field: EncryptedField, row: models.Model, ring: dict[str, bytes], kid: str, totals: Rotation) -> None:
    values = field.read(row)
    if not any(values):
        return
    if all(not value or _kid(value) == kid for value in values):
        totals.current += 1
        return
    associated_data = field.associated_data(row)
    try:
        renewed = [
            crypto.encrypt(crypto.decrypt(value, associated_data=associated_data, ring=ring),
                           associated_data=associated_data, ring=ring)
            if value and _kid(value) != kid else value
            for value in values
        ]
    except crypto.DecryptionError:
        totals.unreadable += 1
        return
    field.write(row, renewed)
    row.save(update_fields=field.update_fields)
    totals.reencrypted += 1


def _kid(value: str) -> str | None:
    parts = value.split(":", 2)
    return parts[1] if len(parts) == 3 else None
