"""Applications built on the ledger. The platform never imports these by name."""
