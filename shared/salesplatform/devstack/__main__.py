"""`python -m salesplatform.devstack run|servers|chaos`: see salesplatform.devstack.run."""

from salesplatform.devstack.run import main

raise SystemExit(main())
