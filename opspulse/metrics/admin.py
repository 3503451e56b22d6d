from django.contrib import admin

from opspulse.metrics.models import Metric


@admin.register(Metric)
class MetricAdmin(admin.ModelAdmin):
    list_display = ["store", "name", "granularity", "timestamp", "value"]
    list_filter = ["name", "granularity"]
