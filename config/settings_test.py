from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405  (threads of the consumers must not keep connections)
# Tests change stores and secrets between requests; the cache has tests of its own.
INGEST_STORE_CACHE_SECONDS = env_int("INGEST_STORE_CACHE_SECONDS", 0)  # noqa: F405
