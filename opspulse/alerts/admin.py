from django.contrib import admin

from opspulse.alerts.models import Alert, AlertChannel, AlertEvent, ChannelDelivery, DeliveryAttempt


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ["store", "type", "config", "is_active"]
    list_filter = ["type", "is_active"]


@admin.register(AlertEvent)
class AlertEventAdmin(admin.ModelAdmin):
    list_display = ["store", "alert", "message", "fired_at", "resolved_at", "acknowledged_at", "notified_at"]


@admin.register(AlertChannel)
class AlertChannelAdmin(admin.ModelAdmin):
    list_display = ["account", "store", "kind", "name", "masked_url", "is_active"]
    # The signing secret and the URL stay encrypted and out of the admin.
    exclude = ["secret_encrypted", "url_encrypted"]


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    readonly_fields = ["started_at", "duration_ms", "status_code", "error"]


@admin.register(ChannelDelivery)
class ChannelDeliveryAdmin(admin.ModelAdmin):
    list_display = ["event", "channel", "status", "attempts", "delivered_at"]
    list_filter = ["status"]
    inlines = [DeliveryAttemptInline]
