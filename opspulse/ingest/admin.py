from django.contrib import admin

from opspulse.ingest.models import WebhookDelivery


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "store", "platform", "topic", "status", "attempts", "received_at", "error"]
    list_filter = ["status", "platform", "topic"]
    search_fields = ["delivery_key", "event_id", "error"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    list_select_related = ["store"]

    def has_add_permission(self, request):
        return False
