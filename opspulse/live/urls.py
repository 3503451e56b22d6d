from django.urls import path

from opspulse.live import views

urlpatterns = [
    path("stores/<uuid:public_id>/", views.dashboard, name="dashboard"),
    path("stores/<uuid:public_id>/panels/", views.panels, name="dashboard-panels"),
    path("stores/<uuid:public_id>/import/", views.backfill_progress, name="store-backfill"),
]
