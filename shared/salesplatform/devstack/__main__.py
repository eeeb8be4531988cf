"""`python -m salesplatform.devstack run`: see salesplatform.devstack.run."""

from salesplatform.devstack.run import main

raise SystemExit(main())
