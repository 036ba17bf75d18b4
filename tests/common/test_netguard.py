"""The addresses no RUCKUS process calls for someone else, in every IPv6 wrapping (server and agent share this)."""

from __future__ import annotations

import ipaddress

import pytest

from common.netguard import always_refused, in_networks, plain_address


@pytest.mark.parametrize("address", [
    "169.254.169.254", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1", "fe80::1",
    "fd00:ec2::254", "100.100.100.200", "0.0.0.0", "::", "224.0.0.1", "ff02::1", "255.255.255.255",
])
def test_never_called(address):
    assert always_refused(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["10.1.2.3", "192.168.0.10", "127.0.0.1", "::1", "fd12::1", "8.8.8.8"])
def test_ordinary_addresses_are_left_to_the_allowed_networks(address):
    assert not always_refused(ipaddress.ip_address(address))


def test_mapped_addresses_are_checked_as_ipv4():
    assert plain_address(ipaddress.ip_address("::ffff:10.0.0.5")) == ipaddress.ip_address("10.0.0.5")
    assert in_networks(ipaddress.ip_address("::ffff:10.0.0.5"), [ipaddress.ip_network("10.0.0.0/8")])
    assert not in_networks(ipaddress.ip_address("::ffff:10.0.0.5"), [ipaddress.ip_network("::/0")])
