from __future__ import annotations

from django import forms
from django.utils import timezone

from opspulse.accounts.actions import create_account
from opspulse.accounts.models import Invitation, Role


class SignupForm(forms.Form):
    """The fields sign-up asks for besides email and password (allauth's form adds those)."""

    account_name = forms.CharField(
        label="Business name",
        max_length=200,
        required=False,
        help_text="Shown to your teammates; you can change it later.",
        widget=forms.TextInput(attrs={"placeholder": "Acme Outdoor", "autocomplete": "organization"}),
    )

    def signup(self, request, user) -> None:
        # Someone signing up to accept an invitation joins that account instead; one
        # who never does is offered to create an account on their first visit.
        if not Invitation.objects.open().filter(email__iexact=user.email, expires_at__gt=timezone.now()).exists():
            create_account(owner=user, name=self.cleaned_data.get("account_name", ""))


# The templates write these forms' inputs out themselves, with their Tailwind classes
# (Tailwind finds classes only in the templates).


class AccountNameForm(forms.Form):
    name = forms.CharField(
        label="Account name",
        max_length=200,
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("The account needs a name.")
        return name


class InviteForm(forms.Form):
    email = forms.EmailField(label="Email address")
    role = forms.ChoiceField(
        label="Role",
        choices=[(Role.MEMBER, "Member – views dashboards"), (Role.ADMIN, "Admin – also manages stores and alerts")],
        initial=Role.MEMBER,
    )


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class DeleteAccountForm(forms.Form):
    confirm_name = forms.CharField(
        label="Type the account name to confirm",
        max_length=200,
    )

    def __init__(self, *args, account, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.account = account

    def clean_confirm_name(self) -> str:
        typed = self.cleaned_data["confirm_name"].strip()
        if typed != self.account.name.strip():
            raise forms.ValidationError("That is not the account's name.")
        return typed
