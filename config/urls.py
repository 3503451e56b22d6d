from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path

# The admin signs in through allauth too: same rate limits, same two-factor step.
admin.site.login = secure_admin_login(admin.site.login)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("shopify/", include("opspulse.platforms.shopify.urls")),
    path("", include("opspulse.accounts.urls")),
    path("", include("opspulse.live.urls")),
    path("", include("opspulse.privacy.urls")),
    path("", include("opspulse.platforms.urls")),
    path("", include("opspulse.alerts.urls")),
]
