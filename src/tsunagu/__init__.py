"""Tsunagu: a consortium ledger for the municipalities of Tokyo's Tama and island region."""

__version__ = "0.1.0"
