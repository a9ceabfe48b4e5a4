"""Kefu's shopping assistant: settings, LLM client, vLLM lifecycle, the store, the CLI."""
