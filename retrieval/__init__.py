"""Product retrieval: catalogue index, hybrid search, re-ranking."""
