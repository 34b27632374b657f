"""What Yahoo's quote streamer sends, for the local streamers of the tests and the benchmark."""

from __future__ import annotations

import base64
import json
from datetime import datetime

from yfinance.pricing_pb2 import PricingData


def pricing_frame(
    symbol: str, price: float, previous_close: float, at: datetime, market_hours: int = 1
) -> str:
    """One streamer message: JSON around the base64 of a PricingData protobuf."""
    data = PricingData(
        id=symbol,
        price=price,
        time=int(at.timestamp() * 1000),
        previous_close=previous_close,
        change_percent=(price / previous_close - 1) * 100,
        market_hours=market_hours,
    )
    encoded = base64.b64encode(data.SerializeToString()).decode()
    return json.dumps({"type": "pricing", "message": encoded})
