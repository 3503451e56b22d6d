from django.contrib import admin

from opspulse.stores.models import Integration, Store


class IntegrationInline(admin.StackedInline):
    model = Integration
    # Credentials are never shown, even encrypted.
    fields = ["type", "status", "last_error", "updated_at"]
    readonly_fields = ["updated_at"]
    extra = 0


@admin.register(Store)
class StoreAdmin(admin.ModelAdmin):
    list_display = ["name", "platform", "domain", "account", "timezone", "currency"]
    list_filter = ["platform"]
    search_fields = ["name", "domain"]
    readonly_fields = ["public_id", "ingest_token"]
    inlines = [IntegrationInline]
