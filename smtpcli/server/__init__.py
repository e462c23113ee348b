"""smtpcli.server"""
