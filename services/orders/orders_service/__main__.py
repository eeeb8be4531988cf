from orders_service.bootstrap import definition
from salesplatform.service import main
from salesplatform.settings import settings_for

if __name__ == "__main__":
    main(definition(), settings_for("orders"))
