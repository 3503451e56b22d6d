from django.db import migrations

# Every change to a store's alert rules, whoever makes it, moves the store's
# alert_rules_version on, in the same transaction; and a save of a store row read
# before that change cannot move it back.
CREATE = """
    CREATE FUNCTION opspulse_alert_rules_changed() RETURNS trigger AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            UPDATE stores_store SET alert_rules_version = alert_rules_version + 1 WHERE id = OLD.store_id;
        END IF;
        IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.store_id <> OLD.store_id) THEN
            UPDATE stores_store SET alert_rules_version = alert_rules_version + 1 WHERE id = NEW.store_id;
        END IF;
        RETURN NULL;
    END $$ LANGUAGE plpgsql;
    CREATE TRIGGER alert_rules_changed AFTER INSERT OR UPDATE OR DELETE ON alerts_alert
        FOR EACH ROW EXECUTE FUNCTION opspulse_alert_rules_changed();

    CREATE FUNCTION opspulse_alert_rules_version_kept() RETURNS trigger AS $$
    BEGIN
        NEW.alert_rules_version := greatest(NEW.alert_rules_version, OLD.alert_rules_version);
        RETURN NEW;
    END $$ LANGUAGE plpgsql;
    CREATE TRIGGER alert_rules_version_kept BEFORE UPDATE ON stores_store
        FOR EACH ROW EXECUTE FUNCTION opspulse_alert_rules_version_kept();
"""
DROP = """
    DROP TRIGGER IF EXISTS alert_rules_version_kept ON stores_store;
    DROP FUNCTION IF EXISTS opspulse_alert_rules_version_kept();
    DROP TRIGGER IF EXISTS alert_rules_changed ON alerts_alert;
    DROP FUNCTION IF EXISTS opspulse_alert_rules_changed();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0008_channel_url_encrypted"),
        ("stores", "0008_alert_rules_version"),
    ]

    operations = [migrations.RunSQL(CREATE, DROP)]
