"""Territory (division 分区 → area 片区 → district 小区) and the staff who work in it."""

from __future__ import annotations

from typing import Literal

from customer_service.domain.events import (
    AreaDefined,
    CustomerCodeIssued,
    DistrictDefined,
    DivisionDefined,
    StaffAssigned,
    StaffDeparted,
)
from salesplatform.aggregate import Aggregate
from salesplatform.errors import DomainError
from salesplatform.events import Event

Kind = Literal["division", "area", "district"]


class TerritoryUnit(Aggregate):
    """One node of the territory tree. A district also numbers its customers (客编)."""

    stream_prefix = "territory"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.kind: Kind | None = None
        self.name = ""
        self.area_id: str | None = None
        self.division_id: str | None = None
        self.customers_numbered = 0

    def apply(self, event: Event) -> None:
        match event:
            case DivisionDefined():
                self.kind, self.name, self.division_id = "division", event.name, event.division_id
            case AreaDefined():
                self.kind, self.name = "area", event.name
                self.area_id, self.division_id = event.area_id, event.division_id
            case DistrictDefined():
                self.kind, self.name = "district", event.name
                self.area_id, self.division_id = event.area_id, event.division_id
            case CustomerCodeIssued():
                self.customers_numbered = event.sequence

    def is_a(self, kind: Kind) -> bool:
        return self.exists and self.kind == kind

    def _check_redefinition(self, kind: Kind, parent: str | None, current_parent: str | None) -> None:
        if not self.exists:
            return
        if self.kind != kind:
            raise DomainError(f"{self.id} is already a {self.kind}", code="territory_id_taken", field="id")
        if parent != current_parent:
            # Moving a node would move its customers' roll-ups; that is a reorganisation, not
            # a rename, and is not done by redefining.
            raise DomainError(
                f"{kind} {self.id} belongs to {current_parent}; it cannot be moved", code="territory_parent_fixed"
            )

    def define_division(self, name: str) -> None:
        self._check_redefinition("division", None, None)
        if self.exists and self.name == name:
            return
        self.record(DivisionDefined(division_id=self.id, name=name))

    def define_area(self, name: str, division: TerritoryUnit) -> None:
        if not division.is_a("division"):
            raise DomainError(f"unknown division {division.id}", code="unknown_division", field="division_id")
        self._check_redefinition("area", division.id, self.division_id)
        if self.exists and self.name == name:
            return
        self.record(AreaDefined(area_id=self.id, name=name, division_id=division.id))

    def define_district(self, name: str, area: TerritoryUnit) -> None:
        if not area.is_a("area"):
            raise DomainError(f"unknown area {area.id}", code="unknown_area", field="area_id")
        self._check_redefinition("district", area.id, self.area_id)
        if self.exists and self.name == name:
            return
        assert area.division_id is not None
        self.record(DistrictDefined(district_id=self.id, name=name, area_id=area.id, division_id=area.division_id))

    def issue_customer_code(self, customer_id: str) -> str:
        """The next customer code of this district: '<district code>-<6-digit sequence>'."""
        if not self.is_a("district"):
            raise DomainError(f"unknown district {self.id}", code="unknown_district", field="district_id")
        sequence = self.customers_numbered + 1
        if sequence > 999_999:
            raise DomainError(f"district {self.id} has used all customer numbers", code="customer_numbers_exhausted")
        code = f"{self.id}-{sequence:06d}"
        self.record(
            CustomerCodeIssued(district_id=self.id, customer_id=customer_id, customer_code=code, sequence=sequence)
        )
        return code


class StaffMember(Aggregate):
    """A rep, supervisor or area manager and where they work."""

    stream_prefix = "staff"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.name = ""
        self.role: str | None = None
        self.district_id: str | None = None
        self.area_id: str | None = None
        self.supervisor_id: str | None = None
        self.active = False

    def apply(self, event: Event) -> None:
        match event:
            case StaffAssigned():
                self.name, self.role = event.name, event.role
                self.district_id, self.area_id = event.district_id, event.area_id
                self.supervisor_id = event.supervisor_id
                self.active = True
            case StaffDeparted():
                self.active = False

    @property
    def is_active_rep(self) -> bool:
        return self.active and self.role == "rep"

    def assign(
        self,
        name: str,
        role: str,
        *,
        district: TerritoryUnit | None,
        area: TerritoryUnit | None,
        supervisor: StaffMember | None,
        customers_owned: int,
    ) -> None:
        """`customers_owned`: customers this person holds as rep now (from the archive)."""
        if district is not None and not district.is_a("district"):
            raise DomainError(f"unknown district {district.id}", code="unknown_district", field="district_id")
        if district is None and (area is None or not area.is_a("area")):
            raise DomainError(f"unknown area {area.id if area else None}", code="unknown_area", field="area_id")
        if district is not None and area is not None and district.area_id != area.id:
            raise DomainError(
                f"district {district.id} is not in area {area.id}", code="district_not_in_area", field="area_id"
            )
        district_id = district.id if district is not None else None
        area_id = district.area_id if district is not None else area.id  # type: ignore[union-attr]
        if supervisor is not None:
            if not (supervisor.active and supervisor.role == "supervisor"):
                raise DomainError(
                    f"unknown supervisor {supervisor.id}", code="unknown_supervisor", field="supervisor_id"
                )
            if supervisor.district_id != district_id:
                raise DomainError(
                    f"supervisor {supervisor.id} leads another district",
                    code="supervisor_not_in_district",
                    field="supervisor_id",
                )
        moving = self.active and self.role == "rep" and (role != "rep" or self.district_id != district_id)
        if moving and customers_owned:
            raise DomainError(
                f"{self.id} still holds {customers_owned} customers; reassign them first (reassign_all)",
                code="rep_has_customers",
            )
        if (
            self.active
            and self.name == name
            and self.role == role
            and self.district_id == district_id
            and self.area_id == area_id
            and self.supervisor_id == (supervisor.id if supervisor else None)
        ):
            return
        self.record(
            StaffAssigned(
                staff_id=self.id,
                name=name,
                role=role,
                district_id=district_id,
                area_id=area_id,
                supervisor_id=supervisor.id if supervisor else None,
            )
        )

    def depart(self, customers_owned: int) -> None:
        if not self.exists:
            raise DomainError(f"unknown staff member {self.id}", code="unknown_staff", field="staff_id")
        if not self.active:
            raise DomainError(f"{self.id} has already left", code="already_departed")
        if customers_owned:
            # Nothing is orphaned (客户及人员关系维护表): a rep leaves only once the customers
            # have another rep.
            raise DomainError(
                f"{self.id} still holds {customers_owned} customers; reassign them first (reassign_all)",
                code="rep_has_customers",
            )
        self.record(StaffDeparted(staff_id=self.id))
