from customer_service.bootstrap import definition
from salesplatform.service import main
from salesplatform.settings import settings_for

settings = settings_for("customer")
main(definition(timezone=settings.timezone), settings)
