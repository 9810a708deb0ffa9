"""The demo organisation of api.md and the default role grants (editable data)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from app.auth.services import hash_password
from app.extensions import db
from app.models import LoanProduct, Region, Role, RoleGrant, Team, User

ROLES = {
    "customer": "客户",
    "officer": "客户经理",
    "team_lead": "团队主管",
    "approver": "审贷员",
    "supervisor": "主管审批人员",
    "regional_director": "区域总监",
    "general_manager": "老总",
    "analyst": "业务分析",
    "admin": "系统管理员",
}

DEFAULT_GRANTS: dict[str, dict[str, str]] = {
    "officer": {
        "task.inbox": "own",
        "task.work": "own",
        "application.view": "own",
        "application.upload": "own",
        "customer.view": "own",
        "loan.view": "own",
        "decision.view_committee": "own",
    },
    "team_lead": {
        "task.inbox": "team",
        "task.work": "team",
        "task.view": "team",
        "task.assign": "team",
        "application.view": "team",
        "application.upload": "team",
        "customer.view": "team",
        "loan.view": "team",
        "decision.view_centralized": "team",
        "decision.view_committee": "team",
        "approval.view": "team",
    },
    "approver": {"task.inbox": "own", "task.work": "own", "application.view": "team", "customer.view": "team"},
    "supervisor": {
        "task.inbox": "all",
        "task.work": "all",
        "application.view": "all",
        "customer.view": "all",
        "approval.view": "all",
    },
    "regional_director": {
        "task.inbox": "region",
        "task.view": "region",
        "application.view": "region",
        "customer.view": "region",
        "loan.view": "region",
        "decision.view_centralized": "region",
        "decision.view_committee": "region",
        "approval.view": "region",
    },
    "general_manager": {
        "task.inbox": "all",
        "task.view": "all",
        "application.view": "all",
        "customer.view": "all",
        "customer.view_full": "all",
        "loan.view": "all",
        "decision.view_centralized": "all",
        "decision.view_committee": "all",
        "approval.view": "all",
        "audit.view": "all",
    },
    # The inbox is for all staff (api.md): analysts and admins have one too, empty unless a
    # task is assigned to them or a diagram names their role as a candidate.
    "analyst": {"task.inbox": "own", "decision.evaluate": "all", "process.view": "all", "process.deploy": "all"},
    "admin": {
        "task.inbox": "own",
        "admin.manage": "all",
        "audit.view": "all",
        "process.view": "all",
        "process.deploy": "all",
        "decision.evaluate": "all",
    },
}

PRODUCTS = [
    ("BIZ-EQ", "经营周转贷", "0.12", "equal_installment", "0"),
    ("BIZ-EP", "经营周转贷（等额本金）", "0.108", "equal_principal", "0"),
    ("BIZ-IF", "经营周转贷（先息后本）", "0.144", "interest_first", "0.01"),
]

REGIONS = [("HK", "海口", "BIZ-EQ"), ("SY", "三亚", "BIZ-EP"), ("QH", "琼海", "BIZ-EQ")]
TEAMS = [
    ("HK-A", "海口一队", "HK", "centralized"),
    ("SY-A", "三亚一队", "SY", "committee"),
    ("QH-A", "琼海一队", "QH", "centralized"),
]
# username, name, roles, team, region
USERS = [
    ("lead_hka", "海口主管", ["team_lead"], "HK-A", None),
    ("officer_hka1", "海口经理一", ["officer"], "HK-A", None),
    ("officer_hka2", "海口经理二", ["officer"], "HK-A", None),
    ("lead_sya", "三亚主管", ["team_lead"], "SY-A", None),
    ("officer_sya1", "三亚经理一", ["officer"], "SY-A", None),
    ("lead_qha", "琼海主管", ["team_lead"], "QH-A", None),
    ("officer_qha1", "琼海经理一", ["officer"], "QH-A", None),
    ("approver1", "审贷员一", ["approver"], None, None),
    ("approver2", "审贷员二", ["approver"], None, None),
    ("approver3", "审贷员三", ["approver"], None, None),
    ("gm", "总经理", ["general_manager"], None, None),
    ("director_hk", "海口区域总监", ["regional_director"], None, "HK"),
    ("director_sy", "三亚区域总监", ["regional_director"], None, "SY"),
    ("director_qh", "琼海区域总监", ["regional_director"], None, "QH"),
    ("supervisor", "主管审批", ["supervisor"], None, None),
    ("analyst", "业务分析", ["analyst"], None, None),
    ("admin", "系统管理员", ["admin"], None, None),
]
TEAM_APPROVERS = {"HK-A": ["approver1", "approver2"], "QH-A": ["approver1", "approver2", "approver3"]}
DEFAULT_TEAM_PARAMETERS = {"reminder_days": 3, "offline_sms_after_minutes": 5, "offline_lead_alert_after_minutes": 30}


def ensure_roles_and_grants() -> None:
    """Roles and default grants; existing grants are left as the admins edited them."""
    for code, name in ROLES.items():
        if db.session.get(Role, code) is None:
            db.session.add(Role(code=code, name=name))
    db.session.flush()
    existing = {(g.role_code, g.action) for g in db.session.scalars(select(RoleGrant))}
    for role, grants in DEFAULT_GRANTS.items():
        for action, scope in grants.items():
            if (role, action) not in existing:
                db.session.add(RoleGrant(role_code=role, action=action, scope=scope))
    db.session.flush()


DEMO_PASSWORD = "demo1234"  # noqa: S105 - the documented demo password (embedded mode only)


def seed_demo(password: str = DEMO_PASSWORD) -> bool:
    """Create the demo organisation; False when it already exists."""
    ensure_roles_and_grants()
    if db.session.scalar(select(Region).where(Region.code == "HK")) is not None:
        return False
    products = {}
    for code, name, rate, method, fee in PRODUCTS:
        products[code] = LoanProduct(
            code=code,
            name=name,
            annual_rate=Decimal(rate),
            method=method,
            fee_rate=Decimal(fee),
            min_amount=Decimal("1000"),
            max_amount=Decimal("1000000"),
            min_term=1,
            max_term=60,
        )
    db.session.add_all(products.values())
    db.session.flush()
    regions = {}
    for code, name, product in REGIONS:
        regions[code] = Region(code=code, name=name, default_product_id=products[product].id)
    db.session.add_all(regions.values())
    db.session.flush()
    teams = {}
    for code, name, region, mode in TEAMS:
        teams[code] = Team(
            code=code,
            name=name,
            region_id=regions[region].id,
            approval_mode=mode,
            parameters=dict(DEFAULT_TEAM_PARAMETERS),
        )
    db.session.add_all(teams.values())
    db.session.flush()
    roles = {r.code: r for r in db.session.scalars(select(Role))}
    hashed = hash_password(password)
    users = {}
    for username, name, role_codes, team, region in USERS:
        team_row = teams.get(team) if team else None
        users[username] = User(
            username=username,
            display_name=name,
            password_hash=hashed,
            team_id=team_row.id if team_row else None,
            region_id=team_row.region_id if team_row else (regions[region].id if region else None),
            roles=[roles[c] for c in role_codes],
        )
    db.session.add_all(users.values())
    db.session.flush()
    for code, team in teams.items():
        lead = next((u for u in users.values() if u.team_id == team.id and "team_lead" in u.role_codes), None)
        team.lead_id = lead.id if lead else None
        team.approvers = [users[name] for name in TEAM_APPROVERS.get(code, [])]
    db.session.flush()
    return True
