"""An alert channel's URL is a credential (anyone holding a Slack webhook URL can post to
the room): it is encrypted at rest, bound to its channel, and pages show only its host."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.urls import reverse

from opspulse.alerts import actions as alert_actions
from opspulse.alerts.models import AlertChannel, mask_url
from opspulse.lib import crypto

SLACK_URL = "https://hooks.slack.com/services/T0AAAA/B0BBBB/Sl4ckSecretPathXyz"


def test_a_channels_url_is_not_stored_in_plain_text(personas, shopify_store):
    alert_actions.create_channel(account=personas["account"], store=shopify_store, kind="slack", name="Ops",
                                 url=SLACK_URL)

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM alerts_alertchannel")
        row = " ".join(str(value) for value in cursor.fetchone())
    assert "Sl4ckSecretPathXyz" not in row and "hooks.slack.com" not in row
    assert AlertChannel.objects.get().url == SLACK_URL


def test_a_url_copied_onto_another_channel_does_not_decrypt(personas, shopify_store):
    """Attack: someone who can write one row copies a victim channel's ciphertext into
    their own channel to have OpsPulse reveal or post to it."""
    victim = alert_actions.create_channel(account=personas["account"], kind="slack", name="Ops", url=SLACK_URL)
    mine = alert_actions.create_channel(account=personas["other_account"], kind="webhook", name="Mine",
                                        url="https://example.com/hook")
    AlertChannel.objects.filter(pk=mine.pk).update(url_encrypted=victim.url_encrypted)

    with pytest.raises(crypto.DecryptionError):
        AlertChannel.objects.get(pk=mine.pk).url


def test_the_channels_page_shows_the_host_and_never_the_secret_path(personas, shopify_store):
    alert_actions.create_channel(account=personas["account"], store=shopify_store, kind="slack", name="Ops",
                                 url=SLACK_URL)
    client = Client()
    client.force_login(personas["alice"])

    page = client.get(reverse("alert-channels", args=[shopify_store.public_id])).content.decode()

    assert "https://hooks.slack.com/…" in page
    assert "Sl4ckSecretPathXyz" not in page and "T0AAAA" not in page


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (SLACK_URL, "https://hooks.slack.com/…"),
        ("https://user:pass@hooks.example.com:8443/in?token=abc", "https://hooks.example.com:8443/…"),
        ("https://hooks.example.com/", "https://hooks.example.com/"),
        ("http://[2001:db8::1]/hook", "http://[2001:db8::1]/…"),
    ],
)
def test_a_masked_url_keeps_only_scheme_host_and_port(url, shown):
    assert mask_url(url) == shown


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_the_urls_of_existing_channels():
    executor = MigrationExecutor(connection)
    executor.migrate([("alerts", "0007_resolution_mail")])
    old_apps = executor.loader.project_state([("alerts", "0007_resolution_mail")]).apps
    account = old_apps.get_model("accounts", "Account").objects.create(name="Before")
    old_channel = old_apps.get_model("alerts", "AlertChannel").objects.create(
        account=account, kind="slack", name="Ops", url=SLACK_URL, secret_encrypted="",
    )

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    channel = AlertChannel.objects.get(pk=old_channel.pk)
    assert channel.url == SLACK_URL
    assert "Sl4ckSecretPathXyz" not in channel.url_encrypted
