"""The Postfix fixture itself: a real Postfix accepts mail on loopback and stores it."""

from __future__ import annotations

import smtplib

import pytest

from tests.servers.postfix import postfix, postfix_pool  # noqa: F401  (fixtures)


@pytest.mark.xdist_group("postfix-tls")
def test_postfix_delivers_into_its_maildir(postfix, tls_certs) -> None:  # noqa: F811
    pf = postfix(tls=tls_certs.valid)
    with smtplib.SMTP("127.0.0.1", pf.port, timeout=10) as client:
        client.ehlo("client.test")
        assert client.has_extn("starttls")
        client.starttls(context=tls_certs.client_context())
        client.ehlo("client.test")
        client.sendmail("a@client.test", ["someone@pf.test"], b"Subject: hi\r\n\r\nbody\r\n")
    [message] = pf.delivered(1)
    assert b"Subject: hi" in message and b"Received: from client.test" in message
