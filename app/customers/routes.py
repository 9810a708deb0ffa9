"""Customer API (F10): masked by default."""

from __future__ import annotations

from typing import Any

from marshmallow import fields

from app import docs
from app.auth.permissions import caller, requires
from app.customers import services
from app.extensions import db
from app.hardening import Blueprint
from app.schemas import PageArgs, RevealArgs, full_flag, page_of

blp = Blueprint("customers", __name__, url_prefix="/api/v1/customers", description="客户 Customers")


class CustomerArgs(PageArgs):
    q = fields.String(load_default=None)
    full = full_flag()


@blp.route("")
@blp.alt_response(200, schema=docs.CustomerPageDoc, success=True, description="OK")
@blp.arguments(CustomerArgs(), location="query")
@requires("customer.view")
def list_customers(args: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Customers of applications within the caller's scope."""
    who = caller()
    full = services.reveal(who, args["full"], "customer", None)
    rows, total = services.list_customers(who, args["q"], args["page"], args["per_page"])
    items = [services.customer_view(c, who, full) for c in rows]
    db.session.commit()
    return page_of(items, total, args)


@blp.route("/<int(max=2147483647):customer_id>")
@blp.alt_response(200, schema=docs.CustomerDetailDoc, success=True, description="OK")
@blp.arguments(RevealArgs(), location="query")
@requires("customer.view")
def get_customer(args: dict[str, Any], customer_id: int):  # type: ignore[no-untyped-def]
    """One customer with the applications the caller may see."""
    who = caller()
    customer = services.get_customer(customer_id, who)
    full = services.reveal(who, args["full"], "customer", customer.id)
    view = {
        **services.customer_view(customer, who, full),
        "profile": services.profile_view(customer.profile, full),
        "applications": services.customer_applications(customer, who),
    }
    db.session.commit()
    return view
