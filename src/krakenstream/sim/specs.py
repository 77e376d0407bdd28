"""The simulator's instruments: symbols, Kraken's precisions, plausible prices and lot sizes.

Pure. :data:`DEFAULT_PAIRS` lists well-known pairs with Kraken's precisions;
:func:`guess_spec` makes one up for any other pair, :func:`synthetic_specs` many for scale
tests.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from decimal import Decimal

from ..core.events import Precision
from ..core.pairs import is_pair
from ..errors import InvalidPair


@dataclass(frozen=True, slots=True)
class PairSpec:
    """One instrument: its symbol, precisions, starting price and typical level size."""

    symbol: str
    price_precision: int
    qty_precision: int
    #: starting mid price in quote units
    price: float
    #: a typical level's quantity in base units
    lot: float
    #: what the instrument channel says of it: ``online``, or ``maintenance``,
    #: ``cancel_only``, ``post_only``, ``delisted``... (its book is served all the same)
    status: str = "online"

    @property
    def base(self) -> str:
        return self.symbol.split("/", 1)[0]

    @property
    def quote(self) -> str:
        return self.symbol.split("/", 1)[1]

    @property
    def precision(self) -> Precision:
        return Precision(self.price_precision, self.qty_precision)


def _spec(symbol: str, pp: int, qp: int, price: float, usd_per_quote: float = 1.0,
          status: str = "online") -> PairSpec:
    # a typical resting order is worth a few thousand dollars
    return PairSpec(symbol, pp, qp, price, 2500.0 / (price * usd_per_quote), status)


#: the default instruments, with Kraken's precisions and plausible prices
DEFAULT_PAIRS: tuple[PairSpec, ...] = (
    _spec("BTC/USD", 1, 8, 95000.0),
    _spec("ETH/USD", 2, 8, 3500.0),
    _spec("SOL/USD", 2, 8, 180.0),
    _spec("DOGE/USD", 7, 8, 0.38),
    _spec("PEPE/USD", 9, 2, 0.000012345),
    _spec("XRP/USD", 5, 8, 2.5),
    _spec("ADA/USD", 6, 8, 0.9),
    _spec("LTC/USD", 2, 8, 100.0),
    _spec("ETH/BTC", 5, 8, 0.03684, 95000.0),
    _spec("BTC/EUR", 1, 8, 88000.0, 1.08),
    _spec("ETH/EUR", 2, 8, 3240.0, 1.08),
    _spec("DOT/USD", 4, 8, 7.5),
    _spec("LINK/USD", 5, 8, 22.0),
    _spec("USDT/USD", 5, 8, 1.0),
)

#: rough prices of well-known assets, in dollars, to guess a pair given with ``--pairs``
_USD_PRICE = {
    "BTC": 95000.0, "XBT": 95000.0, "ETH": 3500.0, "SOL": 180.0, "DOGE": 0.38,
    "PEPE": 0.000012345, "XRP": 2.5, "ADA": 0.9, "LTC": 100.0, "DOT": 7.5, "LINK": 22.0,
    "USDT": 1.0, "USDC": 1.0, "USD": 1.0, "EUR": 1.08, "GBP": 1.27, "JPY": 0.0067,
    "CAD": 0.73, "AUD": 0.66, "CHF": 1.13, "AVAX": 40.0, "MATIC": 0.55, "POL": 0.55,
    "ATOM": 8.0, "SHIB": 0.000022, "TRX": 0.2, "BCH": 450.0, "XLM": 0.4, "UNI": 12.0,
    "AAVE": 300.0, "XMR": 190.0, "ETC": 28.0, "FIL": 5.0, "NEAR": 5.5, "ALGO": 0.35,
}


def guess_spec(symbol: str) -> PairSpec:
    """A spec for any ``BASE/QUOTE``: known assets get a plausible price, unknown ones a
    price derived from the name (stable across runs); the price precision keeps about six
    significant digits, like Kraken's."""
    if not is_pair(symbol):
        raise InvalidPair(f"not a pair of the form BASE/QUOTE: {symbol!r}")
    for spec in DEFAULT_PAIRS:
        if spec.symbol == symbol:
            return spec
    base, quote = symbol.split("/")
    base_usd = _USD_PRICE.get(base)
    if base_usd is None:
        base_usd = 10 ** random.Random(f"price:{base}").uniform(-3.0, 3.0)
    quote_usd = _USD_PRICE.get(quote, 1.0)
    price = base_usd / quote_usd
    pp = min(10, max(0, math.ceil(5.5 - math.log10(price))))
    # Kraken counts very cheap coins in whole hundredths (PEPE, SHIB: qty precision 2)
    qp = 2 if base_usd < 0.001 else 8
    return _spec(symbol, pp, qp, round_sig(price, 5), quote_usd)


#: (price precision, qty precision, price) templates the synthetic pairs cycle through
_SYNTHETIC = (
    (1, 8, 50000.0), (2, 8, 2500.0), (3, 8, 150.0), (4, 8, 12.0), (5, 8, 1.2),
    (6, 8, 0.35), (7, 8, 0.08), (8, 2, 0.0005), (9, 2, 0.00002), (2, 4, 600.0),
)


#: the quotes some synthetic bases are also listed in: (quote, dollars per unit, every, at)
#: — base ``i`` is listed in that quote when ``i % every == at``
_SYNTHETIC_QUOTES = (("EUR", 1.08, 10, 3), ("USDT", 1.0, 20, 2), ("BTC", 95000.0, 50, 1))
#: every 20th synthetic USD pair (the 10th, 30th...) is not online, in these states in turn
_NOT_ONLINE = ("maintenance", "cancel_only", "post_only", "delisted")


def synthetic_specs(n: int, seed: int | str | None = None) -> list[PairSpec]:
    """``n`` pairs ``SYN0001/USD``... with varied precisions and prices, for scale tests,
    plus a listing as varied as Kraken's: some bases also quoted in EUR (1 in 10), USDT
    (1 in 20) and BTC (1 in 50), one USD pair in 20 not ``online`` (maintenance,
    cancel_only, post_only, delisted in turn) and one EUR pair in 4 ``cancel_only``.
    Every pair's book is served whatever its status; the status is what patterns such as
    ``*/USD`` look at."""
    rng = random.Random(f"synthetic:{seed}")
    out: list[PairSpec] = []
    extra: list[PairSpec] = []
    for i in range(1, n + 1):
        pp, qp, price = _SYNTHETIC[(i - 1) % len(_SYNTHETIC)]
        price = round_sig(price * rng.uniform(0.5, 2.0), 5)
        base = f"SYN{i:04d}"
        status = _NOT_ONLINE[(i // 20) % len(_NOT_ONLINE)] if i % 20 == 10 else "online"
        out.append(_spec(f"{base}/USD", pp, qp, price, status=status))
        for quote, usd, every, at in _SYNTHETIC_QUOTES:
            if i % every == at:
                quoted = price / usd
                qpp = min(10, max(0, math.ceil(5.5 - math.log10(quoted))))
                status = "cancel_only" if quote == "EUR" and i % 40 == 33 else "online"
                extra.append(_spec(f"{base}/{quote}", qpp, qp, round_sig(quoted, 5), usd,
                                   status=status))
    return out + extra


def round_sig(x: float, digits: int) -> float:
    return float(f"{x:.{digits}g}")


def increment(precision: int) -> float:
    """``10**-precision`` as the float Kraken writes (``1e-08``, ``0.1``)."""
    return float(Decimal(1).scaleb(-precision))
