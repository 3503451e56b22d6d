from django.urls import path

from opspulse.live.consumers import DashboardConsumer

websocket_urlpatterns = [
    path("ws/stores/<uuid:public_id>/", DashboardConsumer.as_asgi()),
]
