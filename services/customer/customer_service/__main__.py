from customer_service.bootstrap import definition
from salesplatform.service import main
from salesplatform.settings import settings_for

main(definition(), settings_for("customer"))
