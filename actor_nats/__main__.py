"""`python -m actor_nats` is the same as the `actor-nats` console script."""

from actor_nats.cli import main

raise SystemExit(main())
