"""infir: instruction-following retrieval — synthesize, train, evaluate, search."""

__version__ = "0.1.0"
