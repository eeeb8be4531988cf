from reporting_service.bootstrap import definition
from reporting_service.config import OfficeRulesSettings
from salesplatform.service import main
from salesplatform.settings import settings_for

settings = settings_for("reporting")
main(definition(timezone=settings.timezone, office_rules=OfficeRulesSettings().rules()), settings)
