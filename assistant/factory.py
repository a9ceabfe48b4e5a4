"""Build the assistant's shared services from settings, once per process. Optional parts (the fast intent
classifier, fitted customer profiles) are used when they have been trained/fitted and skipped otherwise."""

from __future__ import annotations

import logging

from assistant.cases import CaseBook
from assistant.conversation_log import ConversationLog
from assistant.dialogue import Assistant
from assistant.guardrails import RateLimiter
from assistant.llm import LLM
from assistant.session import Services
from assistant.settings import Settings

log = logging.getLogger(__name__)


def load_profiles(settings: Settings):
    """Fitted customer profiles (``kefu segment fit``), or None when not fitted yet."""
    try:
        from segmentation.profiles import ProfileStore
    except ImportError:
        return None
    try:
        return ProfileStore.load(settings)
    except Exception as exc:  # noqa: BLE001 - not fitted yet: the assistant runs without segments
        log.info("customer profiles unavailable (%s); run `kefu segment fit`", exc)
        return None


def load_classifier(settings: Settings):
    """The fast intent classifier (``kefu intents train``), or None when not trained yet."""
    try:
        from assistant.intents import IntentClassifier
    except ImportError:
        return None
    try:
        return IntentClassifier.load(settings)
    except Exception as exc:  # noqa: BLE001 - not trained yet: understanding uses the LLM and rules only
        log.info("intent classifier unavailable (%s); run `kefu intents train`", exc)
        return None


def build_assistant(settings: Settings) -> Assistant:
    from retrieval.hybrid import ProductSearch

    services = Services(
        settings=settings,
        search=ProductSearch.open(settings),
        profiles=load_profiles(settings),
        cases=CaseBook(settings.data_dir / "cases.sqlite"),
    )
    return Assistant(
        services,
        LLM.from_settings(settings),
        mode=settings.planner,
        tool_choice=settings.native_tool_choice,
        reads_slots=settings.llm_reads_slots,
        classifier=load_classifier(settings),
        log=ConversationLog(settings.logs_dir / "conversations.sqlite"),
        max_chars=settings.max_message_chars,
        rate=RateLimiter(settings.rate_limit_per_minute, 60.0),
    )
