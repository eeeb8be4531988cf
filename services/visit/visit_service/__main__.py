from salesplatform.service import main
from salesplatform.settings import load, settings_for
from visit_service.bootstrap import definition
from visit_service.config import FieldSettings

if __name__ == "__main__":
    main(definition(settings=load(FieldSettings)), settings_for("visit"))
