"""``smtpcli bench``: an asyncio SMTP load generator (see ``generator``).

Independent of the smtplib client core: it speaks SMTP itself over ``asyncio.Protocol`` so
the cost per command stays low enough to compare with Postfix's smtp-source.
"""
