from django.conf import settings
from django.urls import path

from opspulse.accounts import views

urlpatterns = [
    path("", views.home, name="home"),
]
if settings.DEBUG:
    urlpatterns.append(path("dev/mail/", views.dev_mailbox, name="dev-mailbox"))
