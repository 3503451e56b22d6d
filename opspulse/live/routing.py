from django.urls import path

from opspulse.live.consumers import DashboardConsumer, OverviewConsumer, WallboardConsumer

websocket_urlpatterns = [
    path("ws/stores/<uuid:public_id>/", DashboardConsumer.as_asgi()),
    path("ws/overview/", OverviewConsumer.as_asgi()),
    path("ws/stores/<uuid:public_id>/wallboard/", WallboardConsumer.as_asgi()),
    path("ws/wall/<str:token>/", WallboardConsumer.as_asgi()),
]
