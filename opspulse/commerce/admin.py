from django.contrib import admin

from opspulse.commerce.models import Cart, InventoryLevel, LineItem, Order


class LineItemInline(admin.TabularInline):
    model = LineItem
    extra = 0


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["number", "store", "status", "total", "currency", "placed_at"]
    list_filter = ["status"]
    search_fields = ["number", "external_id"]
    inlines = [LineItemInline]


@admin.register(InventoryLevel)
class InventoryLevelAdmin(admin.ModelAdmin):
    list_display = ["title", "sku", "item_external_id", "location_external_id", "available", "store"]
    search_fields = ["title", "sku", "item_external_id"]


@admin.register(Cart)
class CartAdmin(admin.ModelAdmin):
    list_display = ["external_id", "store", "item_count", "value", "platform_updated_at"]
