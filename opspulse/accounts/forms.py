from __future__ import annotations

from django import forms

from opspulse.accounts.actions import create_account


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
        create_account(owner=user, name=self.cleaned_data.get("account_name", ""))
