from customer_service.bootstrap import definition
from customer_service.config import CustomerSettings
from salesplatform.service import main
from salesplatform.settings import load, settings_for

if __name__ == "__main__":
    main(definition(load(CustomerSettings)), settings_for("customer"))
