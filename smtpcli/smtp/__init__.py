"""The smtplib-based SMTP client shared by send, probe, session and demo.

The jobs built on it live beside it, one folder each: ``smtpcli.probe``, ``smtpcli.security``
(security probes) and ``smtpcli.loadgen`` (the load generator behind ``bench``).

Modules, each with one job:

* ``target``      parse ``host[:port]``/``[v6]:port``/URL targets; TLS mode by port
* ``transcript``  timestamped, staged events (sent/recv/tls/info), redaction, stage timings
* ``reply``       ``Reply``: code, lines, enhanced status code
* ``tlsinfo``     SSL contexts from options; protocol/cipher/chain/verification facts
* ``connection``  ``SmtpConnection``: connect, greeting, EHLO/HELO, STARTTLS, bounded I/O
* ``auth``        AUTH PLAIN/LOGIN/CRAM-MD5/XOAUTH2/OAUTHBEARER, secrets handling
* ``mx``          MX hosts through the configured resolver (null MX, implicit MX)
* ``message``     build the test message / MIME / read a ready message
* ``dkimsign``    DKIM signing with dkimpy
* ``transaction`` MAIL/RCPT/DATA|BDAT with ESMTP extensions; per-recipient results
* ``delivery``    run a transaction against a server or the MX hosts, with fallback

Nothing here imports click or rich, and nothing prints: results are data, errors are
``smtpcli.errors`` exceptions.
"""
