from django.contrib import admin

from opspulse.metrics.models import Metric, ProductDay


@admin.register(Metric)
class MetricAdmin(admin.ModelAdmin):
    list_display = ["store", "name", "granularity", "timestamp", "value"]
    list_filter = ["name", "granularity"]


@admin.register(ProductDay)
class ProductDayAdmin(admin.ModelAdmin):
    list_display = ["store", "day", "title", "units", "revenue"]
    list_filter = ["day"]
    search_fields = ["title", "product_key"]
