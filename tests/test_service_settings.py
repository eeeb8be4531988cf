"""Each service reads its own settings from the environment with one settings class, checked at
start: a value that cannot be used is refused with the name of its variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic_settings import BaseSettings

from console_service.config import ConsoleSettings
from customer_service.config import CustomerSettings
from orders_service.config import OrderRulesSettings
from reporting_service.config import OfficeRulesSettings
from salesplatform.events import Role
from salesplatform.settings import InvalidSettings, load, settings_for
from visit_service.config import FieldSettings

CONSOLE_URLS = {f"CONSOLE_{s}_URL": f"http://{s.lower()}" for s in ("CUSTOMER", "VISIT", "ORDERS", "REPORTING")}

BAD_VALUES = [
    (CustomerSettings, "COMPANY_TIMEZONE", "Mars/Olympus_Mons"),
    (OrderRulesSettings, "ORDERS_APPROVAL_THRESHOLD_FEN", "-5"),
    (OrderRulesSettings, "ORDERS_CREDIT_APPROVER", "chairman"),
    (OrderRulesSettings, "COMPANY_TIMEZONE", "Asia/Atlantis"),
    (FieldSettings, "VISIT_HIGH_VALUE_APPROVER", "chairman"),
    (FieldSettings, "VISIT_CHECK_IN_MAX_DISTANCE_M", "far"),
    (FieldSettings, "VISIT_PLAN_FREQUENCIES", "A:weekly"),
    (FieldSettings, "VISIT_PLAN_DAY_START", "8h30"),
    (FieldSettings, "VISIT_PLAN_WORKDAYS", "1,2,9"),
    (FieldSettings, "COMPANY_TIMEZONE", "Nowhere"),
    (OfficeRulesSettings, "REPORTING_WARNING_MARGIN_PERCENT", "140"),
    (OfficeRulesSettings, "COMPANY_TIMEZONE", "Asia/Atlantis"),
    (ConsoleSettings, "CONSOLE_SESSION_HOURS", "0"),
    (ConsoleSettings, "COMPANY_TIMEZONE", "Asia/Atlantis"),
]


@pytest.mark.parametrize(("cls", "variable", "value"), BAD_VALUES, ids=[f"{v}={x}" for _, v, x in BAD_VALUES])
def test_a_bad_setting_is_refused_with_its_variable(
    cls: type[BaseSettings], variable: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, url in CONSOLE_URLS.items():
        monkeypatch.setenv(name, url)
    load(cls)  # the defaults (and the console's addresses) are good
    monkeypatch.setenv(variable, value)
    with pytest.raises(InvalidSettings) as refused:
        load(cls)
    assert len(refused.value.problems) == 1
    assert refused.value.problems[0].startswith(f"{variable}: ")
    assert repr(value) in refused.value.problems[0]


def test_the_settings_read_are_the_ones_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPANY_TIMEZONE", "Asia/Urumqi")
    monkeypatch.setenv("VISIT_HIGH_VALUE_GRADES", " a, B ,")
    monkeypatch.setenv("VISIT_HIGH_VALUE_APPROVER", "sales_manager")
    visit = load(FieldSettings)
    assert visit.grades_approved_higher() == frozenset({"A", "B"})
    assert visit.high_value_approver is Role.sales_manager
    assert visit.config().timezone == "Asia/Urumqi"
    assert load(CustomerSettings).timezone == load(OfficeRulesSettings).timezone == "Asia/Urumqi"
    assert load(OrderRulesSettings).policy().timezone == "Asia/Urumqi"


def test_a_missing_platform_setting_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORDERS_DATABASE_URL", raising=False)
    with pytest.raises(InvalidSettings, match="ORDERS_DATABASE_URL: Field required"):
        settings_for("orders")
    monkeypatch.setenv("NATS_STREAM_REPLICAS", "9")
    with pytest.raises(InvalidSettings, match=r"NATS_STREAM_REPLICAS: .*'9'"):
        settings_for("orders", database_url="postgresql://x/y")


@pytest.mark.parametrize("service", ["customer", "visit", "orders", "reporting"])
def test_a_service_started_with_a_bad_setting_stops_naming_it(service: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(service.upper())}
    env |= {f"{service.upper()}_DATABASE_URL": "postgresql://nowhere.invalid/x", "COMPANY_TIMEZONE": "Moon/Base"}
    result = subprocess.run(
        [sys.executable, "-m", f"{service}_service"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert result.returncode == 1
    assert (
        "invalid settings:" in result.stderr and "COMPANY_TIMEZONE:" in result.stderr and "'Moon/Base'" in result.stderr
    )
    assert "Traceback" not in result.stderr
