"""Kefu's shopping assistant: the dialogue loop and its events, session and service Protocols, tools, planning,
understanding, replies and their grounding, policy and guardrails."""
