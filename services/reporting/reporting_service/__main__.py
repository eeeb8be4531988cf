from salesplatform.service import main
from salesplatform.settings import settings_for

from reporting_service.bootstrap import definition

settings = settings_for("reporting")
main(definition(timezone=settings.timezone), settings)
