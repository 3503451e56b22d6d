from django.urls import path

from opspulse.alerts import views

urlpatterns = [
    path("stores/<uuid:public_id>/alerts/", views.rules, name="alert-rules"),
    path("stores/<uuid:public_id>/alerts/new/", views.create_rule, name="alert-rule-create"),
    path("stores/<uuid:public_id>/alerts/edit/", views.edit_rule, name="alert-rule-edit"),
    path("stores/<uuid:public_id>/alerts/pause/", views.toggle_rule, name="alert-rule-toggle"),
    path("stores/<uuid:public_id>/alerts/delete/", views.delete_rule, name="alert-rule-delete"),
    path("stores/<uuid:public_id>/alerts/history/", views.history, name="alert-history"),
    path("stores/<uuid:public_id>/alerts/acknowledge/", views.acknowledge, name="alert-acknowledge"),
    path("stores/<uuid:public_id>/alerts/acknowledge-all/", views.acknowledge_all, name="alert-acknowledge-all"),
    path("stores/<uuid:public_id>/alerts/channels/", views.channels, name="alert-channels"),
    path("stores/<uuid:public_id>/alerts/channels/remove/", views.remove_channel, name="alert-channel-remove"),
    path("alerts/email/", views.preferences, name="alert-preferences"),
    path("alerts/channels/", views.account_channels, name="alert-account-channels"),
    path("account/<uuid:public_id>/alerts/channels/", views.add_account_channel, name="alert-account-channel-add"),
    path(
        "account/<uuid:public_id>/alerts/channels/remove/", views.remove_account_channel,
        name="alert-account-channel-remove",
    ),
]
