"""``smtpcli serve --http``: a Mailpit-compatible API v1 subset, serve's extras, a web inbox.

Imported only when ``--http`` is given (aiohttp is not loaded otherwise).
"""
