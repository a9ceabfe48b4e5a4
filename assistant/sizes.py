"""Package sizes as numbers, so "a bigger one" and "which is biggest?" can be answered from the cards:
"16 OZ" -> 16 oz, "1 GA" -> 128 oz, "12 CT" -> 12 count. Weight and volume share the ounce (a shopper asking
for a bigger jar means either); counts compare only with counts."""

from __future__ import annotations

import re

OUNCES = {
    "oz": 1.0, "z": 1.0, "fl oz": 1.0, "floz": 1.0, "lb": 16.0, "lbs": 16.0, "#": 16.0, "ga": 128.0, "gal": 128.0,
    "qt": 32.0, "pt": 16.0, "ml": 0.0338, "l": 33.81, "lt": 33.81, "ltr": 33.81, "liter": 33.81, "g": 0.03527,
    "gm": 0.03527, "gr": 0.03527, "kg": 35.27,
}  # fmt: skip
LOADS = {"ld", "lds", "load", "loads"}  # laundry detergent
COUNTS = {"ct", "pk", "pack", "count", "ea", "each", "rl", "roll", "rolls", "pc", "pcs", "sht", "sheets"}  # fmt: skip
_SIZE = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*(?:/\s*(\d+(?:\.\d+)?)\s*)?(fl\s*oz|[a-z#]+)", re.I)


def size_of(text: str | None) -> tuple[float, str] | None:
    """(amount, "oz" | "count" | "load") of a package size, or None when it names no unit we know.
    "12/12 OZ" is 144 oz."""
    if not text:
        return None
    m = _SIZE.search(text)
    if m is None:
        return None
    amount = float(m.group(1)) * (float(m.group(2)) if m.group(2) else 1.0)
    unit = " ".join(m.group(3).lower().split())
    if unit in OUNCES:
        return round(amount * OUNCES[unit], 3), "oz"
    if unit in COUNTS:
        return amount, "count"
    if unit in LOADS:
        return amount, "load"
    return None


def unit_price(price: float | None, size: str | None) -> tuple[float, str] | None:
    """Price per ounce (or per item for counts), or None when the price or the size is unknown."""
    parsed = size_of(size)
    if price is None or parsed is None or parsed[0] <= 0:
        return None
    amount, unit = parsed
    return round(price / amount, 4), {"oz": "oz", "load": "load"}.get(unit, "item")
