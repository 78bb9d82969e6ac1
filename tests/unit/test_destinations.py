"""Which hosts users may point recorders and endpoints at (VPACK_BLOCKED_NETWORKS)."""

from __future__ import annotations

import ipaddress

import pytest
from pydantic import ValidationError

from vpack.providers.errors import BadConfig
from vpack.security.destinations import check_destination, parse_networks
from vpack.settings import Settings

DEFAULT = Settings().blocked


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "169.254.169.254", "::1", "::ffff:127.0.0.1", "0.0.0.0"],  # noqa: S104
)
def test_the_servers_own_and_cloud_metadata_addresses_are_refused(host: str) -> None:
    with pytest.raises(BadConfig, match="VPACK_BLOCKED_NETWORKS"):
        check_destination(host, DEFAULT)


@pytest.mark.parametrize("host", ["192.168.1.64", "10.0.0.5", "172.16.3.1", "203.0.113.9"])
def test_shop_lans_and_the_internet_are_open(host: str) -> None:
    check_destination(host, DEFAULT)


def test_a_name_that_does_not_resolve_is_left_to_the_providers_check() -> None:
    check_destination("nvr.invalid", DEFAULT)  # RFC 6761: never resolves


def test_no_blocked_networks_means_no_limit() -> None:
    check_destination("127.0.0.1", [])


def test_the_operator_sets_the_list_and_bad_entries_are_named() -> None:
    assert parse_networks(" 10.0.0.0/8 , fd00::/8,") == [
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("fd00::/8"),
    ]
    with pytest.raises(BadConfig):
        check_destination("10.1.2.3", Settings(blocked_networks="10.0.0.0/8").blocked)
    with pytest.raises(ValidationError, match="'office' is not a network"):
        Settings(blocked_networks="10.0.0.0/8,office")
