from django.urls import path

from opspulse.privacy import views

urlpatterns = [
    path("stores/<uuid:public_id>/data-requests/", views.data_requests, name="store-data-requests"),
    path(
        "stores/<uuid:public_id>/data-requests/download/",
        views.download_data_request,
        name="store-data-request-download",
    ),
]
