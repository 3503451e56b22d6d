from django.urls import path

from opspulse.platforms.shopify import views

urlpatterns = [
    path("install/", views.install, name="shopify-install"),
    path("install/resume/", views.resume_install, name="shopify-install-resume"),
    path("connect/", views.connect, name="shopify-connect"),
    path("callback/", views.callback, name="shopify-callback"),
]
