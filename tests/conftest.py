"""Shared fixtures: loopback SMTP, scripted peer and DNS servers, and test certificates."""

from tests.servers.certs import certs, tls_certs
from tests.servers.dns_fixture import dns_server
from tests.servers.scripted_peer import scripted_peer
from tests.servers.smtp_fixture import smtp_server

__all__ = ["certs", "dns_server", "scripted_peer", "smtp_server", "tls_certs"]
