"""Kefu's small error hierarchy. Every message says what the user can do about it."""


class KefuError(Exception):
    """Base class: an expected failure with a message a user can act on."""


class ConfigError(KefuError):
    """Settings or a configuration file are wrong."""


class LLMError(KefuError):
    """The LLM server is unreachable, failed, or returned something unusable."""


class ModelPrepError(KefuError):
    """The model could not be prepared (missing package, bad file, failed conversion)."""


class ServerError(KefuError):
    """A managed server (vLLM) failed to start or stop."""


class StoreError(KefuError):
    """The shop store is missing, or input data is invalid. Names file, row and column where known."""


class SearchIndexError(KefuError):
    """The product search index is missing, out of date or unreadable (rebuild: `kefu index --rebuild`)."""


class FilterError(KefuError):
    """A search filter names an unknown field or has an impossible value."""


class IntentError(KefuError):
    """The intent classifier is not trained (run `kefu intents train`), or intent data or a label map is invalid."""


class CaseError(KefuError):
    """A support case is unknown, or cannot do what was asked (closed already, no closing note)."""


class RecordsError(KefuError):
    """The records database (conversation log, cases, returns, feedback) cannot be opened, migrated or reached."""


class StateError(KefuError):
    """The shared state store (Redis, ``KEFU_STATE_URL``) is not answering, or the redis client is missing."""


class ConversationBusy(KefuError):
    """Another turn of this conversation is running (on this worker or another): retry when it has finished."""
