"""smtpcli.codes"""
