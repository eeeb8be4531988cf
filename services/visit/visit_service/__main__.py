from salesplatform.service import main
from salesplatform.settings import settings_for
from visit_service.bootstrap import definition

if __name__ == "__main__":
    settings = settings_for("visit")
    main(definition(timezone=settings.timezone), settings)
