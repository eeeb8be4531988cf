from orders_service.bootstrap import definition
from orders_service.config import OrderRulesSettings
from salesplatform.service import main
from salesplatform.settings import load, settings_for

if __name__ == "__main__":
    main(definition(load(OrderRulesSettings).policy()), settings_for("orders"))
