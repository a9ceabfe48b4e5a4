"""Every way a person reaches Kefu: the `kefu` command, the HTTP API, the Gradio pages, session tokens."""
