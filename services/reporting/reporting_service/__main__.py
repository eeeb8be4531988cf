from reporting_service.bootstrap import definition
from reporting_service.config import OfficeRulesSettings
from salesplatform.service import main
from salesplatform.settings import load, settings_for

if __name__ == "__main__":
    rules = load(OfficeRulesSettings)
    main(definition(timezone=rules.timezone, office_rules=rules.rules()), settings_for("reporting"))
