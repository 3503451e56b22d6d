from django.contrib import admin

from opspulse.privacy.models import CustomerDataRequest


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
