from django.urls import path

from opspulse.accounts import views

urlpatterns = [
    # Pages of the account the user is working in (kept in the session).
    path("account/team/", views.team, name="account-team"),
    path("account/sessions/end/", views.end_session, name="session-end"),
    path("account/audit/", views.audit_log, name="account-audit"),
    path("account/settings/", views.account_settings, name="account-settings"),
    path("account/new/", views.create_account, name="account-create"),
    # Changes name what they change by its public id.
    path("account/<uuid:public_id>/switch/", views.switch_account, name="account-switch"),
    path("account/<uuid:public_id>/invitations/", views.invite, name="account-invite"),
    path("account/<uuid:public_id>/rename/", views.rename_account, name="account-rename"),
    path("account/<uuid:public_id>/delete/", views.delete_account, name="account-delete"),
    path("account/<uuid:public_id>/leave/", views.leave_account, name="account-leave"),
    path("account/members/<uuid:public_id>/role/", views.change_role, name="member-role"),
    path("account/members/<uuid:public_id>/remove/", views.remove_member, name="member-remove"),
    path("account/invitations/<uuid:public_id>/resend/", views.resend_invitation, name="invitation-resend"),
    path("account/invitations/<uuid:public_id>/revoke/", views.revoke_invitation, name="invitation-revoke"),
    path("invitations/<uuid:public_id>/join/", views.join_invitation, name="invitation-join"),
    path("invitations/<str:token>/", views.accept_invitation, name="invitation-accept"),
    # Development only: 404 unless DEBUG is on and the request comes from this machine.
    path("dev/mail/", views.dev_mailbox, name="dev-mailbox"),
]
