"""The running node: store, ordering, execution, verification."""
