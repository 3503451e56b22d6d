"""The address failed webhook signatures are counted under, as OpsPulse finds the client's."""

from __future__ import annotations

import pytest

from opspulse.ingest.endpoint import client_address


@pytest.mark.parametrize(
    ("proxies", "header", "peer", "headers", "expected"),
    [
        (0, None, "203.0.113.7", {"x-forwarded-for": "198.51.100.1"}, "203.0.113.7"),
        (1, None, "10.0.0.2", {"x-forwarded-for": "198.51.100.1, 203.0.113.7"}, "203.0.113.7"),
        (2, None, "10.0.0.2", {"x-forwarded-for": "198.51.100.1, 203.0.113.7"}, "198.51.100.1"),
        (2, None, "10.0.0.2", {"x-forwarded-for": "203.0.113.7"}, "10.0.0.2"),
        (1, None, "10.0.0.2", {"x-forwarded-for": "not-an-address"}, "10.0.0.2"),
        (0, "X-Real-IP", "10.0.0.2", {"x-real-ip": "203.0.113.9"}, "203.0.113.9"),
        (0, "X-Real-IP", "10.0.0.2", {}, "10.0.0.2"),
        (0, None, "2001:db8:1:2:aaaa::1", {}, "2001:db8:1:2::/64"),
        (0, None, "2001:db8:1:2:ffff::9", {}, "2001:db8:1:2::/64"),
        (0, None, "::ffff:203.0.113.7", {}, "203.0.113.7"),
    ],
    ids=[
        "no_proxy_ignores_forwarded_for_case", "one_proxy_case", "two_proxies_case", "short_forwarded_for_case",
        "garbage_forwarded_for_case", "trusted_header_case", "trusted_header_missing_case",
        "ipv6_host_case", "same_ipv6_64_case", "ipv4_mapped_case",
    ],
)
def test_a_forger_cannot_escape_the_limit_by_spoofing_headers_or_rotating_ipv6_addresses(
    settings, proxies, header, peer, headers, expected
):
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = proxies
    settings.ALLAUTH_TRUSTED_CLIENT_IP_HEADER = header

    assert client_address({"client": (peer, 443)}, headers) == expected
