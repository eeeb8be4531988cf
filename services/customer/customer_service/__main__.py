from salesplatform.service import main
from salesplatform.settings import settings_for

from customer_service.bootstrap import definition

main(definition(), settings_for("customer"))
