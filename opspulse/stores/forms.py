from __future__ import annotations

from django import forms


class DeleteStoreForm(forms.Form):
    confirm_name = forms.CharField(label="Type the store's name to confirm", max_length=200)

    def __init__(self, *args, store, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.store = store

    def clean_confirm_name(self) -> str:
        typed = self.cleaned_data["confirm_name"]
        if typed != self.store.name:
            raise forms.ValidationError("That is not the store's name: type it exactly as shown. Nothing was deleted.")
        return typed
