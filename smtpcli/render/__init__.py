"""smtpcli.render"""
