"""smtpcli.checks"""
