"""Kefu's platform core, the lowest layer: settings, errors, the CLI console, the embedder, the shop store
(``kefu.store``), the LLM client and server (``kefu.llm``) and the SQLite records (``kefu.records``).

It imports no other project package; ``retrieval`` and ``segmentation`` build on it, ``assistant`` on those,
``eval`` and ``ui`` on top (the contract is ``[tool.importlinter]`` in pyproject.toml, checked by
``lint-imports``)."""
