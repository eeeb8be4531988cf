"""Customer grade from sales (客户分类: A key 主力 / B general 一般 / C occasional 零散).

The rule, on the customer's sales over the last twelve months (net of returns, in fen):
- A when annual sales are at least ¥200,000 (20,000,000 fen);
- B when they are at least ¥50,000 (5,000,000 fen), or the customer ordered at least 12 times
  (a regular monthly buyer is not "occasional", whatever the amount);
- C otherwise.
"""

from __future__ import annotations

from customer_service.domain.values import SalesFigures

GRADE_A_MIN_FEN = 20_000_000
GRADE_B_MIN_FEN = 5_000_000
REGULAR_BUYER_ORDERS = 12


def grade_for(figures: SalesFigures) -> str:
    if figures.annual_sales_fen >= GRADE_A_MIN_FEN:
        return "A"
    if figures.annual_sales_fen >= GRADE_B_MIN_FEN:
        return "B"
    if figures.order_count is not None and figures.order_count >= REGULAR_BUYER_ORDERS:
        return "B"
    return "C"
