from django.contrib import admin

from opspulse.alerts.models import Alert, AlertEvent


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ["store", "type", "config", "is_active"]
    list_filter = ["type", "is_active"]


@admin.register(AlertEvent)
class AlertEventAdmin(admin.ModelAdmin):
    list_display = ["store", "alert", "message", "fired_at", "notified_at"]
