import sys

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGGING["root"]["level"] = env_str("LOG_LEVEL", "WARNING")  # noqa: F405
# The test process's own connections belong to its test transactions (pytest-django);
# the servers that tests start use the pool, as production does.
if "pytest" in sys.modules:
    DATABASES["default"]["OPTIONS"].pop("pool", None)  # noqa: F405
# Tests change stores and secrets between requests; the cache has tests of its own.
INGEST_STORE_CACHE_SECONDS = env_int("INGEST_STORE_CACHE_SECONDS", 0)  # noqa: F405
# Tests (fuzzing above all) send many forged webhooks from 127.0.0.1; the limit has
# tests of its own, which set it low.
WEBHOOK_FAILED_SIGNATURES_PER_MINUTE = env_int("WEBHOOK_FAILED_SIGNATURES_PER_MINUTE", 1_000_000)  # noqa: F405
