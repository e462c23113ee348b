"""smtpcli.session"""
