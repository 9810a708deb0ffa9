"""Repayment schedules and the annualized rate (APR) of a loan.

Pure functions, standard library only, so that the figures a customer is shown, the
figures the ledger books and the figures the tests check all come from one place.

Rules (product spec):

* monthly rate ``r = annual_rate / 12``; ``annual_rate`` is a fraction such as
  ``Decimal("0.12")``;
* every amount is in yuan and rounded to the fen (0.01) ``ROUND_HALF_UP`` at each
  step, so the schedule is exactly what gets billed;
* installment ``k`` falls due ``k`` months after the disbursement date, on the same
  day of the month, or on the month's last day where that day does not exist;
* the last installment's principal is whatever balance remains, so rounding never
  leaves a fen owing or over-collected, and its payment is that principal plus its
  interest.

Arithmetic is done on exact rationals (``fractions.Fraction``) and only the rounded
results are turned back into ``Decimal``.  ``Decimal`` division with a finite precision
can land a hair below an exact half-fen (e.g. ``0.6 * 0.10 / 12``) and round it the
wrong way; rationals cannot.  The annualized rate is likewise found by an exact
bisection on the 0.01 % grid, so it is the correctly rounded value, not an
approximation of it.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction

__all__ = [
    "METHODS",
    "Installment",
    "add_months",
    "annualized_rate",
    "build_schedule",
]

METHODS = ("equal_installment", "equal_principal", "interest_first")
"""Repayment methods: 等额本息, 等额本金, 先息后本."""

_FEN = Decimal("0.01")


@dataclass(frozen=True)
class Installment:
    """One line of a repayment schedule.

    ``balance`` is the principal still outstanding *after* this installment is paid
    (``0.00`` after the last one).  All amounts are in yuan with two decimals.
    """

    seq: int
    due_date: date
    principal: Decimal
    interest: Decimal
    payment: Decimal
    balance: Decimal


def add_months(start: date, months: int) -> date:
    """Return the date ``months`` months after ``start``, same day of the month.

    Where that day does not exist in the target month the month's last day is used
    (Jan 31 + 1 month = Feb 28, or Feb 29 in a leap year).  Due dates are always
    computed from the original start date, never chained, so a Jan 31 loan is due on
    Mar 31 rather than drifting to Mar 28.  ``months`` may be zero or negative.  The
    result is a plain ``date`` even if ``start`` is a ``datetime``.
    """
    if isinstance(months, bool) or not isinstance(months, int):
        raise TypeError(f"months must be an int, got {type(months).__name__}")
    year, month_index = divmod(start.year * 12 + (start.month - 1) + months, 12)
    month = month_index + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return date(year, month, day)


def build_schedule(
    principal: Decimal,
    annual_rate: Decimal,
    term_months: int,
    method: str,
    start_date: date,
) -> list[Installment]:
    """Build the repayment schedule of a loan disbursed on ``start_date``.

    ``method`` is one of :data:`METHODS`:

    * ``equal_installment`` (等额本息): a fixed payment
      ``P·r(1+r)^n / ((1+r)^n − 1)`` (``P/n`` at a zero rate), rounded; interest is
      the balance times ``r``, rounded; principal is the payment minus the interest;
    * ``equal_principal`` (等额本金): principal ``P/n`` rounded; interest on the
      balance, rounded; payment is their sum;
    * ``interest_first`` (先息后本): interest ``P·r`` rounded every month; all the
      principal in the last installment.

    The last installment takes the remaining balance as its principal.  Rounding the
    fixed amount up by under half a fen a month compounds; for a tiny principal
    (a few yuan over years) or a very long, dear loan (e.g. 10,000 at 36 % over 360
    months) it would repay the loan before the last installment and drive the
    balance negative.  Each principal is therefore kept between zero and the
    outstanding balance (later installments then show zero), so no amount is ever
    negative.  The cap does not apply (checked on a grid) to 100 yuan or more over
    up to 60 months, or 1,000 yuan or more over up to 120 months, at rates up to
    36 %; there the schedule is exactly the spec formula.

    Raises ``ValueError`` (naming the argument) for a non-positive principal, a
    principal with fractions of a fen, a negative or non-finite rate, a term below
    one month or an unknown method, and ``TypeError`` for a float or other
    non-Decimal amount (floats cannot represent most yuan amounts exactly).
    """
    p = _money_fraction(principal, "principal")
    if p <= 0:
        raise ValueError(f"principal must be positive, got {principal}")
    rate = _decimal_fraction(annual_rate, "annual_rate")
    if rate < 0:
        raise ValueError(f"annual_rate must not be negative, got {annual_rate}")
    if isinstance(term_months, bool) or not isinstance(term_months, int):
        raise TypeError(f"term_months must be an int, got {type(term_months).__name__}")
    if term_months < 1:
        raise ValueError(f"term_months must be at least 1, got {term_months}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if not isinstance(start_date, date):
        raise TypeError(f"start_date must be a date, got {type(start_date).__name__}")

    r = rate / 12
    n = term_months
    if method == "equal_installment":
        if r == 0:
            fixed = _round_fen(p / n)
        else:
            growth = (1 + r) ** n
            fixed = _round_fen(p * r * growth / (growth - 1))
    elif method == "equal_principal":
        fixed = _round_fen(p / n)
    else:
        fixed = Fraction(0)

    schedule: list[Installment] = []
    balance = p
    for seq in range(1, n + 1):
        base = p if method == "interest_first" else balance
        interest = _round_fen(base * r)
        if seq == n:
            repaid = balance
        elif method == "equal_installment":
            repaid = min(max(fixed - interest, Fraction(0)), balance)
        else:
            repaid = min(fixed, balance)
        balance -= repaid
        schedule.append(
            Installment(
                seq=seq,
                due_date=add_months(start_date, seq),
                principal=_to_decimal(repaid),
                interest=_to_decimal(interest),
                payment=_to_decimal(repaid + interest),
                balance=_to_decimal(balance),
            )
        )
    return schedule


def annualized_rate(principal: Decimal, fee: Decimal, installments: Sequence[Installment]) -> Decimal:
    """Return the annualized rate of a loan in percent, two decimals (e.g. ``15.85``).

    This is the IRR method of PBoC announcement 2021 No. 3: the customer receives
    ``principal − fee`` at month 0 and pays installment ``k``'s payment at month
    ``k``; the monthly internal rate of return of those cash flows times 12, in
    percent, rounded ``ROUND_HALF_UP`` to 0.01.  An upfront fee raises the rate
    because the customer pays interest on money never received.

    The net present value falls strictly as the rate rises, so the result is found
    by bisection on the 0.01 % grid itself, testing the sign of the NPV *exactly*
    (integer arithmetic) at the half-way points between grid values.  It always
    terminates and gives the correctly rounded result, including at a zero rate and
    for interest-first schedules whose payments are mostly interest.

    Raises ``ValueError`` for a non-positive principal, a negative fee, a fee not
    below the principal, or installments that do not form a schedule for this
    principal (empty, ``seq`` not 1..n, negative amounts, or principals that do not
    add up to ``principal``).
    """
    p = _money_fraction(principal, "principal")
    if p <= 0:
        raise ValueError(f"principal must be positive, got {principal}")
    f = _money_fraction(fee, "fee")
    if f < 0:
        raise ValueError(f"fee must not be negative, got {fee}")
    if f >= p:
        raise ValueError(f"fee must be less than the principal, got {fee}")
    if not installments:
        raise ValueError("installments must not be empty")
    for expected, item in enumerate(installments, start=1):
        if item.seq != expected:
            raise ValueError(f"installments must be numbered 1..n in order; position {expected} has seq {item.seq}")
        if item.principal < 0 or item.interest < 0 or item.payment < 0:
            raise ValueError(f"installments must not have negative amounts; seq {item.seq} does")
    repaid = sum((_money_fraction(i.principal, "installments") for i in installments), Fraction(0))
    if repaid != p:
        raise ValueError(f"installments repay {_to_decimal(repaid)}, not the principal {principal}")

    # Work in fen so every amount is an integer.
    received = int((p - f) * 100)
    payments = [int(_money_fraction(i.payment, "installments") * 100) for i in installments]

    # Grid value m means m/100 percent a year, i.e. a monthly rate of m/120000.
    # The answer is the smallest m whose upper half-way point (m + 1/2) lies above
    # the IRR, i.e. where the NPV is already negative.  A root exactly on a half-way
    # point has NPV 0 there and so rounds up, as ROUND_HALF_UP requires.  Payments add
    # up to at least the principal, so the IRR is >= 0 and m = -1 is a valid lower
    # bound without evaluation.
    def npv_negative_above(m: int) -> bool:
        return _npv_sign(received, payments, 2 * m + 1, 240_000) < 0

    lo, hi = -1, 2_400
    while not npv_negative_above(hi):
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if npv_negative_above(mid):
            hi = mid
        else:
            lo = mid
    return Decimal(hi).scaleb(-2).quantize(_FEN)


def _npv_sign(received: int, payments: list[int], num: int, den: int) -> int:
    """Sign of ``-received + sum(payments[k-1] / (1+i)^k)`` at ``i = num/den > 0``.

    Multiplying the NPV by ``(den + num)^n`` (positive) keeps its sign and leaves
    only integers: ``-received·E^n + sum(payment_k · den^k · E^(n-k))`` with
    ``E = den + num``, evaluated by Horner's rule.
    """
    e = den + num
    acc = -received
    den_power = 1
    for payment in payments:
        den_power *= den
        acc = acc * e + payment * den_power
    return (acc > 0) - (acc < 0)


def _decimal_fraction(value: Decimal, name: str) -> Fraction:
    """Convert a finite ``Decimal`` (or ``int``) to an exact ``Fraction``.

    Floats are refused: ``0.1`` is not one tenth, and a schedule built from it would
    differ from the one the customer was promised.
    """
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise TypeError(f"{name} must be a Decimal, got {type(value).__name__}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise ValueError(f"{name} must be a finite number, got {value}")
    return Fraction(value)


def _money_fraction(value: Decimal, name: str) -> Fraction:
    """Like :func:`_decimal_fraction`, also refusing fractions of a fen."""
    exact = _decimal_fraction(value, name)
    if (exact * 100).denominator != 1:
        raise ValueError(f"{name} must be a whole number of fen (0.01), got {value}")
    return exact


def _round_fen(value: Fraction) -> Fraction:
    """Round an exact amount to the fen, halves away from zero (``ROUND_HALF_UP``)."""
    scaled = abs(value) * 100
    fen, remainder = divmod(scaled.numerator, scaled.denominator)
    if 2 * remainder >= scaled.denominator:
        fen += 1
    return Fraction(fen if value >= 0 else -fen, 100)


def _to_decimal(amount: Fraction) -> Decimal:
    """Turn a whole number of fen (as a ``Fraction``) into a 2-decimal ``Decimal``."""
    fen = amount * 100
    if fen.denominator != 1:  # pragma: no cover - guarded by _round_fen everywhere
        raise AssertionError(f"not a whole number of fen: {amount}")
    return Decimal(fen.numerator).scaleb(-2).quantize(_FEN)
