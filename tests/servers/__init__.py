"""Reusable loopback test servers (SMTP, scripted raw peer, DNS) and certificates."""
