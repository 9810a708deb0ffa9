"""Repayment schedules and the annualized rate, checked against the product spec.

The reference schedule below is re-derived from the spec with exact rationals
(``fractions.Fraction``) and its own rounding, never by calling the module under test.
"""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise

import pytest

from app.loans.schedule import (
    METHODS,
    Installment,
    add_months,
    annualized_rate,
    build_schedule,
)

START = date(2024, 1, 15)

# (principal, annual rate, months): ordinary, awkward and degenerate loans.
LOANS = [
    ("100000", "0.12", 12),
    ("33333.33", "0.108", 7),
    ("5000", "0.0725", 24),
    ("1234.56", "0.36", 36),
    ("99999.99", "0.1537", 11),
    ("800", "0", 5),
    ("10000.01", "0.24", 1),
    ("0.60", "0.10", 1),  # interest is exactly half a fen
]


def _half_up_to_fen(x: Fraction) -> Fraction:
    """Independent ROUND_HALF_UP to 0.01 for non-negative amounts."""
    assert x >= 0
    return Fraction(math.floor(x * 100 + Fraction(1, 2)), 100)


def _reference(
    principal: str, rate: str, months: int, method: str
) -> list[tuple[Fraction, Fraction, Fraction, Fraction]]:
    """(principal, interest, payment, balance) per installment, straight from the spec."""
    p = Fraction(principal)
    r = Fraction(rate) / 12
    if method == "equal_installment":
        if r == 0:
            payment = _half_up_to_fen(p / months)
        else:
            payment = _half_up_to_fen(p * r * (1 + r) ** months / ((1 + r) ** months - 1))
    rows = []
    balance = p
    for k in range(1, months + 1):
        last = k == months
        if method == "equal_installment":
            interest = _half_up_to_fen(balance * r)
            repaid = balance if last else payment - interest
        elif method == "equal_principal":
            interest = _half_up_to_fen(balance * r)
            repaid = balance if last else _half_up_to_fen(p / months)
        else:
            interest = _half_up_to_fen(p * r)
            repaid = p if last else Fraction(0)
        balance -= repaid
        rows.append((repaid, interest, repaid + interest, balance))
    return rows


def _as_fractions(schedule: list[Installment]) -> list[tuple[Fraction, ...]]:
    return [(Fraction(i.principal), Fraction(i.interest), Fraction(i.payment), Fraction(i.balance)) for i in schedule]


def _example() -> list[Installment]:
    return build_schedule(Decimal("100000"), Decimal("0.12"), 12, "equal_installment", START)


# --- the spec's worked example -------------------------------------------------------


def test_worked_example_pays_8884_88_a_month_and_8884_85_last() -> None:
    payments = [i.payment for i in _example()]
    assert payments == [Decimal("8884.88")] * 11 + [Decimal("8884.85")]


def test_worked_example_total_interest_is_6618_53() -> None:
    assert sum(i.interest for i in _example()) == Decimal("6618.53")


def test_worked_example_balance_falls_to_zero() -> None:
    schedule = _example()
    assert [i.seq for i in schedule] == list(range(1, 13))
    assert schedule[0].balance == Decimal("92115.12")
    assert schedule[-1].balance == Decimal("0.00")
    balances = [i.balance for i in schedule]
    assert balances == sorted(balances, reverse=True)


# --- every method against the independent reference ----------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("principal", "rate", "months"), LOANS)
def test_schedule_matches_spec_computed_independently(principal: str, rate: str, months: int, method: str) -> None:
    schedule = build_schedule(Decimal(principal), Decimal(rate), months, method, START)
    assert _as_fractions(schedule) == _reference(principal, rate, months, method)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("principal", "rate", "months"), LOANS)
def test_principals_add_up_to_the_loan_exactly(principal: str, rate: str, months: int, method: str) -> None:
    schedule = build_schedule(Decimal(principal), Decimal(rate), months, method, START)
    assert sum(i.principal for i in schedule) == Decimal(principal)
    assert all(i.payment == i.principal + i.interest for i in schedule)


@pytest.mark.parametrize("method", METHODS)
def test_amounts_have_exactly_two_decimals(method: str) -> None:
    schedule = build_schedule(Decimal("33333.33"), Decimal("0.108"), 7, method, START)
    for item in schedule:
        for amount in (item.principal, item.interest, item.payment, item.balance):
            assert amount.as_tuple().exponent == -2


def test_half_a_fen_of_interest_rounds_up() -> None:
    # 0.60 x 10% / 12 = 0.005 exactly.
    (only,) = build_schedule(Decimal("0.60"), Decimal("0.10"), 1, "interest_first", START)
    assert only.interest == Decimal("0.01")


# --- due dates ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2028, 1, 31), 1, date(2028, 2, 29)),  # leap year
        (date(2027, 1, 31), 1, date(2027, 2, 28)),
        (date(2024, 8, 31), 1, date(2024, 9, 30)),
        (date(2024, 12, 15), 1, date(2025, 1, 15)),
        (date(2023, 11, 30), 3, date(2024, 2, 29)),
        (date(2024, 3, 31), -1, date(2024, 2, 29)),
        (date(2024, 5, 15), 0, date(2024, 5, 15)),
        (date(2024, 1, 31), 25, date(2026, 2, 28)),
    ],
)
def test_add_months_keeps_the_day_or_uses_the_month_end(start: date, months: int, expected: date) -> None:
    assert add_months(start, months) == expected


@pytest.mark.parametrize(
    ("start", "expected_first_three"),
    [
        (date(2028, 1, 31), [date(2028, 2, 29), date(2028, 3, 31), date(2028, 4, 30)]),
        (date(2027, 1, 31), [date(2027, 2, 28), date(2027, 3, 31), date(2027, 4, 30)]),
    ],
)
def test_due_dates_of_a_jan_31_loan_end_of_month_without_drifting(
    start: date, expected_first_three: list[date]
) -> None:
    schedule = build_schedule(Decimal("12000"), Decimal("0.12"), 12, "equal_principal", start)
    assert [i.due_date for i in schedule[:3]] == expected_first_three
    assert schedule[-1].due_date == date(start.year + 1, 1, 31)


# --- method-specific shape ------------------------------------------------------------


def test_interest_first_repays_principal_only_in_the_last_installment() -> None:
    schedule = build_schedule(Decimal("50000"), Decimal("0.096"), 6, "interest_first", START)
    assert [i.principal for i in schedule] == [Decimal("0.00")] * 5 + [Decimal("50000.00")]
    assert {i.interest for i in schedule} == {Decimal("400.00")}
    assert [i.balance for i in schedule] == [Decimal("50000.00")] * 5 + [Decimal("0.00")]


@pytest.mark.parametrize(("principal", "rate", "months"), [("100000", "0.12", 12), ("33333.33", "0.108", 7)])
def test_equal_principal_interest_decreases_every_month(principal: str, rate: str, months: int) -> None:
    schedule = build_schedule(Decimal(principal), Decimal(rate), months, "equal_principal", START)
    interests = [i.interest for i in schedule]
    assert all(a > b for a, b in pairwise(interests))
    assert len({i.principal for i in schedule[:-1]}) == 1


def test_zero_rate_equal_installment_is_principal_over_term() -> None:
    schedule = build_schedule(Decimal("1000"), Decimal("0"), 3, "equal_installment", START)
    assert [i.payment for i in schedule] == [Decimal("333.33"), Decimal("333.33"), Decimal("333.34")]
    assert all(i.interest == 0 for i in schedule)


@pytest.mark.parametrize("method", ["equal_installment", "equal_principal"])
def test_tiny_loan_over_long_term_never_goes_negative(method: str) -> None:
    # 1 yuan over 60 months rounds each month's share (0.0166) up to 0.02.
    schedule = build_schedule(Decimal("1.00"), Decimal("0"), 60, method, START)
    assert all(i.principal >= 0 and i.payment >= 0 and i.balance >= 0 for i in schedule)
    assert sum(i.principal for i in schedule) == Decimal("1.00")


# --- annualized rate (IRR) ------------------------------------------------------------


@pytest.mark.parametrize(("fee", "expected"), [("2000", "15.85"), ("0", "12.00")])
def test_annualized_rate_of_worked_example(fee: str, expected: str) -> None:
    rate = annualized_rate(Decimal("100000"), Decimal(fee), _example())
    assert rate == Decimal(expected)
    assert rate.as_tuple().exponent == -2


@pytest.mark.parametrize(
    ("principal", "rate", "months", "method", "expected"),
    [
        ("100000", "0.12", 12, "interest_first", "12.00"),
        ("100000", "0.12", 12, "equal_principal", "12.00"),
        ("800", "0", 5, "equal_installment", "0.00"),
        # Interest 1,200.50 a month on 120,000: the IRR is exactly 12.005 %.
        ("120000", "0.12005", 3, "interest_first", "12.01"),
    ],
)
def test_annualized_rate_without_fee_is_the_nominal_rate(
    principal: str, rate: str, months: int, method: str, expected: str
) -> None:
    schedule = build_schedule(Decimal(principal), Decimal(rate), months, method, START)
    assert annualized_rate(Decimal(principal), Decimal("0"), schedule) == Decimal(expected)


def _npv(received: Fraction, payments: list[Fraction], annual_percent: Fraction) -> Fraction:
    monthly = annual_percent / 1200
    return -received + sum(p / (1 + monthly) ** k for k, p in enumerate(payments, start=1))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("principal", "fee"), [("100000", "2000"), ("33333.33", "999.99"), ("5000", "4999.99")])
def test_annualized_rate_is_the_correctly_rounded_irr(principal: str, fee: str, method: str) -> None:
    schedule = build_schedule(Decimal(principal), Decimal("0.108"), 7, method, START)
    apr = Fraction(annualized_rate(Decimal(principal), Decimal(fee), schedule))
    received = Fraction(principal) - Fraction(fee)
    payments = [Fraction(i.payment) for i in schedule]
    half = Fraction(1, 200)
    # The true IRR lies in [apr - 0.005, apr + 0.005): NPV is >= 0 below it, < 0 above.
    assert _npv(received, payments, apr - half) >= 0
    assert _npv(received, payments, apr + half) < 0


# --- invalid input --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"principal": Decimal("0")}, "principal"),
        ({"principal": Decimal("-100")}, "principal"),
        ({"principal": Decimal("100.005")}, "principal"),
        ({"principal": Decimal("NaN")}, "principal"),
        ({"annual_rate": Decimal("-0.01")}, "annual_rate"),
        ({"annual_rate": Decimal("Infinity")}, "annual_rate"),
        ({"term_months": 0}, "term_months"),
        ({"term_months": -3}, "term_months"),
        ({"method": "balloon"}, "method"),
        ({"method": "EQUAL_INSTALLMENT"}, "method"),
    ],
)
def test_build_schedule_rejects_nonsense(kwargs: dict[str, object], argument: str) -> None:
    args: dict[str, object] = {
        "principal": Decimal("1000"),
        "annual_rate": Decimal("0.12"),
        "term_months": 12,
        "method": "equal_installment",
        "start_date": START,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=argument):
        build_schedule(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize("argument", ["principal", "annual_rate"])
def test_build_schedule_refuses_floats(argument: str) -> None:
    args: dict[str, object] = {
        "principal": Decimal("1000"),
        "annual_rate": Decimal("0.12"),
        "term_months": 12,
        "method": "equal_installment",
        "start_date": START,
    }
    args[argument] = 0.1
    with pytest.raises(TypeError, match=argument):
        build_schedule(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("principal", "fee", "argument"),
    [
        ("0", "0", "principal"),
        ("-100000", "0", "principal"),
        ("100000", "-1", "fee"),
        ("100000", "100000", "fee"),
        ("100000", "150000", "fee"),
        ("50000", "0", "installments"),  # schedule is for 100,000
    ],
)
def test_annualized_rate_rejects_nonsense(principal: str, fee: str, argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        annualized_rate(Decimal(principal), Decimal(fee), _example())


def test_annualized_rate_rejects_an_empty_schedule() -> None:
    with pytest.raises(ValueError, match="installments"):
        annualized_rate(Decimal("1000"), Decimal("0"), [])
