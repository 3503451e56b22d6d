from django.urls import path

from opspulse.platforms import views

urlpatterns = [
    path("stores/<uuid:public_id>/settings/", views.store_settings, name="store-settings"),
    path("stores/<uuid:public_id>/disconnect/", views.disconnect_store, name="store-disconnect"),
    path("stores/<uuid:public_id>/delete/", views.delete_store, name="store-delete"),
]
