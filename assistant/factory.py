"""Build the assistant from settings, once per process: the real services (``assistant/shop.py``), the model
client, the records database. Optional parts (the fast intent classifier, fitted customer profiles) are used
when they have been trained/fitted and skipped otherwise."""

from __future__ import annotations

import logging

from assistant.guardrails import RateLimiter
from assistant.loop import Assistant, LoopConfig
from assistant.services import Services
from assistant.shop import StoreCatalogue, StoreOrders
from assistant.understanding.intents import IntentClassifier
from kefu.errors import KefuError
from kefu.llm.client import LLM
from kefu.records.cases import CaseBook
from kefu.records.conversations import ConversationLog
from kefu.records.db import Records
from kefu.settings import Settings
from kefu.state_store import limits_storage
from kefu.store import StoreReader
from recommend import store as recommender_store
from retrieval.hybrid import ProductSearch
from retrieval.match import MatchRule
from segmentation.profiles import ProfileStore

log = logging.getLogger(__name__)


def load_profiles(settings: Settings) -> ProfileStore | None:
    """Fitted customer profiles (``kefu segment fit``), or None when not fitted yet."""
    try:
        return ProfileStore.load(settings)
    except KefuError as exc:  # not fitted yet: the assistant runs without segments
        log.info("customer profiles unavailable (%s); run `kefu segment fit`", exc)
        return None


def load_classifier(settings: Settings) -> IntentClassifier | None:
    """The fast intent classifier (``kefu intents train``), or None when not trained yet."""
    try:
        return IntentClassifier.load(settings)
    except KefuError as exc:  # not trained yet: understanding uses the LLM and rules only
        log.info("intent classifier unavailable (%s); run `kefu intents train`", exc)
        return None


def build_services(settings: Settings, records: Records) -> Services:
    """The services over one store connection (a cursor per thread); a live profile update (``POST /v1/events``)
    drops the shopper's cached rank profile, so their next search reads it afresh."""
    reader = StoreReader(settings.store_path)
    search = ProductSearch.open(settings)
    recommender = recommender_store.load(settings)  # None (logged) when not fitted: the category search instead
    catalogue = StoreCatalogue(search, settings.store_path, MatchRule.from_settings(settings), reader, recommender)
    profiles = load_profiles(settings)
    if profiles is not None:
        profiles.on_record(catalogue.forget)
    return Services(catalogue, StoreOrders(settings.store_path, reader), CaseBook(records), profiles)


def loop_config(settings: Settings) -> LoopConfig:
    return LoopConfig(
        mode=settings.planner,
        tool_choice=settings.native_tool_choice,
        native_max_steps=settings.native_max_steps,
        reads_slots=settings.llm_reads_slots,
        tuned_fields=frozenset(settings.reader_fields) if settings.reads_tuned else None,
        lead_in=settings.reply_lead_in,
        thresholds=settings.understanding,
        languages=tuple(settings.languages),
        max_chars=settings.max_message_chars,
    )


def build_assistant(settings: Settings) -> Assistant:
    records = Records.open(settings)
    return Assistant(
        build_services(settings, records),
        LLM.from_settings(settings),
        loop_config(settings),
        classifier=load_classifier(settings),
        log=ConversationLog(records),
        rate=RateLimiter(settings.rate_limit_per_minute, 60.0, limits_storage(settings.state_url), "conversation"),
    )
