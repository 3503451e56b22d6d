from django.urls import path

from opspulse.live import views, wallboard_views

urlpatterns = [
    # The account's overview of all its stores.
    path("", views.home, name="home"),
    path("stores/<uuid:public_id>/", views.dashboard, name="dashboard"),
    path("stores/<uuid:public_id>/panels/", views.panels, name="dashboard-panels"),
    path("stores/<uuid:public_id>/daily/", views.daily_chart, name="dashboard-daily"),
    path("stores/<uuid:public_id>/import/", views.backfill_progress, name="store-backfill"),
    path("stores/<uuid:public_id>/deliveries/retry/", views.retry_deliveries, name="retry-deliveries"),
    path("stores/<uuid:public_id>/wallboard/", wallboard_views.wallboard_page, name="wallboard"),
    path("stores/<uuid:public_id>/wallboard/links/", wallboard_views.wallboard_links, name="wallboard-links"),
    path("wall/<str:token>/", wallboard_views.shared_wallboard, name="shared-wallboard"),
]
