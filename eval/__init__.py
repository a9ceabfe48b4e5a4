"""Offline evaluation of the assistant and its parts."""
