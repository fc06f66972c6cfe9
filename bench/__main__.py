"""Entry point: `python -m bench`. The environment is cleaned before anything from accountdesk is imported."""

import os

# The test suite (and some shells) set cheap argon2 costs; the bench measures the production defaults only.
for _key in [k for k in os.environ if k.startswith("ACCOUNTDESK_ARGON2_")]:
    del os.environ[_key]

from bench.runner import main  # noqa: E402

raise SystemExit(main())
