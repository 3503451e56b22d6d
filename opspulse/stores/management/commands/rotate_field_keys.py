"""Re-encrypt every stored credential with the current (first) key of the key ring.

Rotation: put the new key first in FIELD_ENCRYPTION_KEYS (keeping the old one after
it), deploy, run this command, then remove the old key.
"""

from django.core.management.base import BaseCommand

from opspulse.stores.actions import reencrypt_credentials


class Command(BaseCommand):
    help = "Re-encrypt integration credentials under the current field encryption key."

    def handle(self, *args, **options):
        count = reencrypt_credentials()
        self.stdout.write(f"Re-encrypted the credentials of {count} integration(s).")
