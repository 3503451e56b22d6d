from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from opspulse.accounts import actions
from opspulse.accounts.actions import INVITATION_PROBLEMS, InvitationError, TeamError
from opspulse.accounts.forms import (
    AccountNameForm,
    DeleteAccountForm,
    InviteForm,
    RoleForm,
)
from opspulse.accounts.models import Account, Role
from opspulse.accounts.selectors import (
    CURRENT_ACCOUNT_SESSION_KEY,
    audit_events_for_account,
    get_account_for_user,
    get_current_account,
    get_invitation_for_invitee,
    get_invitation_for_owner,
    get_membership_for_owner,
    get_session_of_user,
    has_confirmed_email,
    invitation_for_token,
    members_of_account,
    open_invitations,
    stores_of_account,
)
from opspulse.lib.mailbox import stored_mails

AUDIT_PAGE_SIZE = 50
LOOPBACK_ADDRESSES = frozenset({"127.0.0.1", "::1"})


@login_required
def create_account(request: HttpRequest) -> HttpResponse:
    form = AccountNameForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        account = actions.create_account(owner=request.user, name=form.cleaned_data["name"])
        _remember(request, account)
        messages.success(request, f"{account.name} is ready. Invite your team from the Team page.")
        return redirect("home")
    return render(request, "accounts/account_new.html", {"form": form}, status=400 if form.errors else 200)


@require_POST
@login_required
def switch_account(request: HttpRequest, public_id: UUID) -> HttpResponse:
    account = get_account_for_user(request.user, public_id)
    _remember(request, account)
    next_url = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(next_url)
    return redirect("home")


# Team


@never_cache
@login_required
def team(request: HttpRequest) -> HttpResponse:
    return _render_team(request, get_current_account(request), InviteForm())


def _render_team(request: HttpRequest, account: Account, invite_form: InviteForm, *, status: int = 200) -> HttpResponse:
    is_owner = account.role == Role.OWNER
    return render(
        request,
        "accounts/team.html",
        {
            "account": account,
            "is_owner": is_owner,
            "members": members_of_account(account),
            "invitations": open_invitations(account) if is_owner else [],
            "invite_form": invite_form,
            "roles": Role.choices,
        },
        status=status,
    )


@require_POST
@login_required
def invite(request: HttpRequest, public_id: UUID) -> HttpResponse:
    account = get_account_for_user(request.user, public_id, at_least=Role.OWNER)
    _remember(request, account)
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            invitation = actions.invite_member(
                account=account, email=form.cleaned_data["email"], role=form.cleaned_data["role"],
                invited_by=request.user, request=request,
            )
        except TeamError as exc:
            form.add_error("email", str(exc))
        else:
            messages.success(request, f"Invitation sent to {invitation.email}.")
            return redirect("account-team")
    return _render_team(request, account, form, status=400)


@require_POST
@login_required
def resend_invitation(request: HttpRequest, public_id: UUID) -> HttpResponse:
    return _change_invitation(
        request, public_id, actions.resend_invitation,
        success="Invitation sent again to {email}; the earlier link no longer works.",
    )


@require_POST
@login_required
def revoke_invitation(request: HttpRequest, public_id: UUID) -> HttpResponse:
    return _change_invitation(
        request, public_id, actions.revoke_invitation, success="The invitation for {email} was withdrawn."
    )


def _change_invitation(
    request: HttpRequest, public_id: UUID, change: Callable[..., object], *, success: str
) -> HttpResponse:
    """Resend or revoke an open invitation of the owner's account; `success` names its {email}."""
    invitation = get_invitation_for_owner(request.user, public_id)
    _remember(request, invitation.account)
    return _change_team(
        request,
        lambda: change(invitation=invitation, actor=request.user, request=request),
        success=success.format(email=invitation.email),
    )


@require_POST
@login_required
def change_role(request: HttpRequest, public_id: UUID) -> HttpResponse:
    membership = get_membership_for_owner(request.user, public_id)
    _remember(request, membership.account)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose owner, admin or member.")
        return redirect("account-team")
    role = Role(form.cleaned_data["role"])
    return _change_team(
        request,
        lambda: actions.change_role(
            membership=membership, role=form.cleaned_data["role"], actor=request.user, request=request
        ),
        success=f"{membership.user.email} is now {'an' if role != Role.MEMBER else 'a'} {role.label.lower()}.",
    )


@require_POST
@login_required
def remove_member(request: HttpRequest, public_id: UUID) -> HttpResponse:
    membership = get_membership_for_owner(request.user, public_id)
    _remember(request, membership.account)
    try:
        actions.remove_member(membership=membership, actor=request.user, request=request)
    except TeamError as exc:
        messages.error(request, str(exc))
        return redirect("account-team")
    if membership.user_id == request.user.pk:
        messages.success(request, f"You left {membership.account.name}.")
        return redirect("home")
    messages.success(request, f"{membership.user.email} was removed from {membership.account.name}.")
    return redirect("account-team")


@require_POST
@login_required
def leave_account(request: HttpRequest, public_id: UUID) -> HttpResponse:
    account = get_account_for_user(request.user, public_id)
    try:
        actions.leave_account(account=account, user=request.user, request=request)
    except TeamError as exc:
        _remember(request, account)
        messages.error(request, str(exc))
        return redirect("account-team")
    messages.success(request, f"You left {account.name}.")
    return redirect("home")


# Account settings and audit log (owners)


@never_cache
@login_required
def account_settings(request: HttpRequest) -> HttpResponse:
    account = get_current_account(request, at_least=Role.OWNER)
    return _render_settings(request, account)


def _render_settings(request, account, *, rename_form=None, delete_form=None, status: int = 200) -> HttpResponse:
    return render(
        request,
        "accounts/settings.html",
        {
            "account": account,
            "rename_form": rename_form or AccountNameForm(initial={"name": account.name}),
            "delete_form": delete_form or DeleteAccountForm(account=account),
            "store_count": stores_of_account(account).count(),
        },
        status=status,
    )


@require_POST
@login_required
def rename_account(request: HttpRequest, public_id: UUID) -> HttpResponse:
    account = get_account_for_user(request.user, public_id, at_least=Role.OWNER)
    _remember(request, account)
    form = AccountNameForm(request.POST)
    if form.is_valid():
        try:
            actions.rename_account(account=account, name=form.cleaned_data["name"], actor=request.user, request=request)
        except TeamError as exc:
            form.add_error("name", str(exc))
        else:
            messages.success(request, f"The account is now called {account.name}.")
            return redirect("account-settings")
    return _render_settings(request, account, rename_form=form, status=400)


@require_POST
@login_required
def delete_account(request: HttpRequest, public_id: UUID) -> HttpResponse:
    account = get_account_for_user(request.user, public_id, at_least=Role.OWNER)
    _remember(request, account)
    form = DeleteAccountForm(request.POST, account=account)
    if form.is_valid():
        try:
            actions.delete_account(account=account, actor=request.user, request=request)
        except TeamError as exc:
            form.add_error("confirm_name", str(exc))
        else:
            request.session.pop(CURRENT_ACCOUNT_SESSION_KEY, None)
            messages.success(request, f"{account.name} and its stores were deleted.")
            return redirect("home")
    return _render_settings(request, account, delete_form=form, status=400)


@never_cache
@login_required
def audit_log(request: HttpRequest) -> HttpResponse:
    account = get_current_account(request, at_least=Role.OWNER)
    page = Paginator(audit_events_for_account(account), AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "accounts/audit.html", {"account": account, "page": page})


# Invitations, from the mailed link


@never_cache
def accept_invitation(request: HttpRequest, token: str) -> HttpResponse:
    """Show an invitation; a POST by the invited (signed-in) user joins the account."""
    invitation = invitation_for_token(token)
    if invitation is None:
        return _invitation_problem(request, INVITATION_PROBLEMS["missing"], status=404)
    user = request.user
    if (
        invitation.state == "accepted" and user.is_authenticated and invitation.accepted_by_id == user.pk
        and invitation.account.memberships.filter(user=user).exists()
    ):
        messages.info(request, f"You are already a member of {invitation.account.name}.")
        return redirect("home")
    if invitation.state != "pending":
        return _invitation_problem(request, INVITATION_PROBLEMS[invitation.state], invitation=invitation, status=410)
    context = {"invitation": invitation, "inviter": invitation.invited_by, "next": request.path}
    if not user.is_authenticated:
        return render(request, "accounts/invitation.html", context)
    if request.method == "POST":
        try:
            membership = actions.accept_invitation(token=token, user=user, request=request)
        except InvitationError as exc:
            return _invitation_problem(request, str(exc), invitation=invitation, status=403 if exc.reason == "wrong_user" else 410)
        _remember(request, membership.account)
        messages.success(request, f"Welcome to {membership.account.name}.")
        return redirect("home")
    context["email_matches"] = has_confirmed_email(user, invitation.email)
    return render(request, "accounts/invitation.html", context)


def _invitation_problem(request: HttpRequest, message: str, *, invitation=None, status: int) -> HttpResponse:
    return render(request, "accounts/invitation_problem.html", {"message": message, "invitation": invitation}, status=status)


def _change_team(request: HttpRequest, change: Callable[[], object], *, success: str) -> HttpResponse:
    """Make a change to the team, say whether it was made, and go back to the Team page."""
    try:
        change()
    except TeamError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, success)
    return redirect("account-team")


def _remember(request: HttpRequest, account: Account) -> None:
    """Make `account` the one the user is working in (pages without an id in the URL show it)."""
    request.session[CURRENT_ACCOUNT_SESSION_KEY] = str(account.public_id)


def dev_mailbox(request: HttpRequest) -> HttpResponse:
    """The mails OpsPulse sent, for development only: with DEBUG on, to this machine.

    The mails hold sign-in and password reset links, so a development server reachable
    from a network shows them to nobody else. The connection's own address decides
    (REMOTE_ADDR), never a header the client sets.
    """
    if not settings.DEBUG or request.META.get("REMOTE_ADDR") not in LOOPBACK_ADDRESSES:
        raise Http404
    return render(request, "accounts/dev_mailbox.html", {"mails": stored_mails()})


@require_POST
@login_required
def end_session(request: HttpRequest) -> HttpResponse:
    """Sign out one of the user's other sessions (the sessions page lists them)."""
    from allauth.usersessions.adapter import get_adapter

    session = get_session_of_user(request.user, request.POST.get("session", ""))
    if session.session_key == request.session.session_key:
        return redirect("account_logout")
    get_adapter().end_sessions([session])
    messages.success(request, "That session is signed out.")
    return redirect("usersessions_list")


@require_POST
@login_required
def join_invitation(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """Accept an invitation listed on home for one of the user's confirmed addresses."""
    invitation = get_invitation_for_invitee(request.user, public_id)
    try:
        membership = actions.join_by_invitation(invitation=invitation, user=request.user, request=request)
    except InvitationError as exc:
        messages.error(request, str(exc))
        return redirect("home")
    _remember(request, membership.account)
    messages.success(request, f"Welcome to {membership.account.name}.")
    return redirect("home")
