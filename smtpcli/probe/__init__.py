"""``smtpcli probe``: what one server, or every MX of a domain, really offers.

Built on the client core in ``smtpcli.smtp``; one job per module:

* ``run``          plan the hosts (MX or a literal target), probe each address, judge verdicts
* ``tlsversions``  which TLS versions a server accepts; a verifying second handshake
* ``dane``         TLSA records (RFC 6698/7672) and matching them against the chain
* ``rdns``         reverse DNS / forward-confirmed reverse DNS of the address, the banner name

The security probes (open relay, enumeration, smuggling...) live in ``smtpcli.security``.
"""
