"""The LLM: ``client`` (OpenAI-compatible requests, structured outputs, tool calls), ``server`` (starting and
stopping vLLM), ``prepare`` (the packaged SmolLM2 GGUF converted into a folder vLLM serves) and ``cli``
(``kefu llm …``)."""
