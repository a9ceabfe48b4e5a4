"""The typed result of each tool (``ToolOutput.data``): what the loop, the pages, the log and the eval read, as
opposed to the text the model reads. Tools build these models; ``ToolCalled.data`` carries the same fields as a
dict (``model_dump(mode="json")``) for JSON consumers, and ``ToolCalled.typed()`` reads it back by tool name.

    search_products, recommend_for_me, similar_items, bought_together, compare_products -> SearchData
    get_my_profile -> ProfileData      list_my_orders -> OrdersData      order_status -> OrderData
    start_return, confirm_return -> ReturnData      handoff_to_human -> CaseData
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class SearchData(BaseModel):
    """A catalogue call: whether what it found matches what was asked."""

    no_match: Literal["not_carried", "outside_limits"] | None = None
    alternatives: bool = False  # the products are related alternatives, not what was asked for
    note: str = ""  # the tool's own note ("Popular picks in the shop.", a warning from the index)


class OfferData(BaseModel):
    campaign_id: str
    ends: str | None = None
    coupons: int = 0


class ProfileData(BaseModel):
    """The signed-in shopper's own profile (never the staff analytics)."""

    customer_id: str
    top_categories: list[str] = Field(default_factory=list)
    price_band: Any = None  # (p25, p75) of prices paid, or the fitted profile's band label
    offers: list[OfferData] = Field(default_factory=list)


class OrdersData(BaseModel):
    order_ids: list[str] = Field(default_factory=list)


class PurchasesData(BaseModel):
    """my_purchases: the last order's items, or what the shopper buys most often."""

    which: Literal["last_order", "usual"]
    order_id: str | None = None  # the last order (which="last_order")
    ordered_at: str | None = None
    lines: int = 0  # products in that order, or products listed


class OrderData(BaseModel):
    order_id: str
    status: str


class ReturnData(BaseModel):
    """A return prepared (``pending``, waiting for the shopper's yes) or requested (``return_id``)."""

    order_id: str
    product_id: str | None = None  # one item of the order; None is the whole order
    pending: bool = False
    return_id: str | None = None


class CaseData(BaseModel):
    case_id: str
    priority: str
    summary: dict[str, Any] = Field(default_factory=dict)


ToolData = SearchData | ProfileData | OrdersData | OrderData | ReturnData | CaseData

DATA_OF: dict[str, type[BaseModel]] = {
    **dict.fromkeys(
        ("search_products", "recommend_for_me", "similar_items", "bought_together", "compare_products"), SearchData
    ),
    "get_my_profile": ProfileData,
    "list_my_orders": OrdersData,
    "order_status": OrderData,
    "start_return": ReturnData,
    "confirm_return": ReturnData,
    "handoff_to_human": CaseData,
}
