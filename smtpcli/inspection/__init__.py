"""Analysis of one received message: parsing, Received hops, DKIM, ARC, SPF, DMARC, bulk rules.

Entry point: :func:`smtpcli.inspection.inspect.inspect_message`.
"""
