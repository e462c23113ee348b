"""smtpcli.smtp"""
