"""The wallboard page, for members and through share links, and the share links' page."""

from __future__ import annotations

import time
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from opspulse.live import share, wallboard_regions
from opspulse.live.models import WallboardLink
from opspulse.stores.models import Store
from opspulse.stores.selectors import (
    get_store_for_admin,
    get_store_for_user,
    user_can_manage_store,
)


def _render_wallboard(
    request: HttpRequest, store: Store, *, websocket_path: str, shared: bool, can_share: bool = False
) -> HttpResponse:
    # Before the first read: the socket uses it to tell whether the page is still current.
    rendered_at = time.time()
    regions = wallboard_regions.render_regions(store, oob=False)
    response = render(
        request,
        "live/wallboard/page.html",
        {
            "store": store,
            "shared": shared,
            "can_share": can_share,
            "regions": {region_id.replace("-", "_"): html for region_id, html in regions.items()},
            "websocket_path": f"{websocket_path}?rendered_at={rendered_at:.3f}",
        },
    )
    # A shared page's URL is its credential: never sent on to another site.
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@never_cache
@login_required
def wallboard_page(request: HttpRequest, public_id: UUID) -> HttpResponse:
    store = get_store_for_user(request.user, public_id)
    return _render_wallboard(
        request,
        store,
        websocket_path=f"/ws/stores/{store.public_id}/wallboard/",
        shared=False,
        can_share=user_can_manage_store(request.user, store),
    )


@never_cache
def shared_wallboard(request: HttpRequest, token: str) -> HttpResponse:
    link = share.link_for_token(token)
    if link is None:
        raise Http404("No such wallboard")
    share.record_link_use(link)
    return _render_wallboard(request, link.store, websocket_path=f"/ws/wall/{token}/", shared=True)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def wallboard_links(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """An owner's or admin's list of a store's wallboard links; POST makes or revokes one."""
    store = get_store_for_admin(request.user, public_id, denied="Wallboard links need the admin role")
    new_link_url = None
    problem = None
    if request.method == "POST":
        if request.POST.get("action") == "revoke":
            try:
                link = share.links_of_store(store).get(public_id=request.POST.get("link", ""))
            except (WallboardLink.DoesNotExist, ValidationError):
                raise Http404("No such link") from None
            if share.revoke_wallboard_link(link=link, revoked_by=request.user, request=request):
                messages.success(request, f"Revoked {link.label or 'the link'}: wallboards open with it closed.")
            return redirect("wallboard-links", public_id=store.public_id)
        lifetime = share.LIFETIMES.get(request.POST.get("expires", share.DEFAULT_LIFETIME))
        if lifetime is None:
            problem = "Choose when the link expires."
        else:
            _, token = share.create_wallboard_link(
                store=store, created_by=request.user, label=request.POST.get("label", ""), lifetime=lifetime[1],
                request=request,
            )
            # Shown in this response only: the token is stored hashed.
            new_link_url = request.build_absolute_uri(reverse("shared-wallboard", args=[token]))
    return render(
        request,
        "live/wallboard/links.html",
        {
            "store": store,
            "links": share.links_of_store(store),
            "new_link_url": new_link_url,
            "problem": problem,
            "lifetimes": [(value, label) for value, (label, _) in share.LIFETIMES.items()],
            "default_lifetime": share.DEFAULT_LIFETIME,
            "label_max_length": share.LABEL_MAX_LENGTH,
        },
        status=400 if problem else 200,
    )
