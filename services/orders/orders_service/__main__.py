from salesplatform.service import main
from salesplatform.settings import settings_for

from orders_service.bootstrap import definition

if __name__ == "__main__":
    main(definition(), settings_for("orders"))
