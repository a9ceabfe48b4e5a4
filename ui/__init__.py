"""Gradio user interfaces: the shopper chat and the support copilot."""
