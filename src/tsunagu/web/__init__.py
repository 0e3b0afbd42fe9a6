"""The HTTP face of a node: FastAPI app factory, API, pages, translations."""
