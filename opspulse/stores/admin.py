from django.contrib import admin

from opspulse.stores.models import CustomerDataRequest, Integration, Store


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


@admin.register(CustomerDataRequest)
class CustomerDataRequestAdmin(admin.ModelAdmin):
    # Customer data: listed by ids only, and never edited here.
    list_display = ["external_id", "store", "created_at"]
    readonly_fields = [
        "public_id", "store", "external_id", "customer_external_id", "customer_email", "export", "created_at"
    ]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
