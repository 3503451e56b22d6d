"""Re-encrypt every encrypted value with the current (first) key of the key ring.

Rotation: put the new key first in FIELD_ENCRYPTION_KEYS (keeping the old one after it),
deploy, run this command, then remove the old key. The command works in small
transactions and skips what is already under the current key, so after an interruption
it is simply run again.
"""

from django.core.management.base import BaseCommand, CommandError

from opspulse.lib import encrypted_fields


class Command(BaseCommand):
    help = "Re-encrypt every encrypted field (credentials, two-factor secrets, alert channels) under the current key."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, default=100, help="rows re-encrypted per transaction")

    def handle(self, *args, batch_size: int, **options) -> None:
        unreadable = 0
        for field in encrypted_fields.registered():
            totals = encrypted_fields.Rotation()
            for totals in encrypted_fields.rotate(field, batch_size=batch_size):
                pass
            unreadable += totals.unreadable
            self.stdout.write(f"{field.name}: {totals}")
        if unreadable:
            raise CommandError(
                f"{unreadable} row(s) hold values that no key of the ring decrypts;"
                " keep the old keys until they are fixed."
            )
