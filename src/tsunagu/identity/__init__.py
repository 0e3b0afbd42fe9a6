"""Organisations, members, roles, custodial keys and authentication."""
