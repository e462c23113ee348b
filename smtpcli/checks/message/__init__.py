"""Analysis of one received message: parsing, Received hops, DKIM, ARC, SPF, DMARC, bulk rules.

Entry point: :func:`smtpcli.checks.message.inspect.inspect_message`.
"""
