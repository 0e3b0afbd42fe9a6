"""The pure ledger core: canonical bytes, keys, transactions, blocks and the Merkle log.

Nothing here opens a file, a socket or a database.
"""
