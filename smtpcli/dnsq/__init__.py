"""smtpcli.dnsq"""
