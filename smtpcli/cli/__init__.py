"""smtpcli.cli"""
