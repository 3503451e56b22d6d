"""OpsPulse settings: one module, driven by the environment.

Development defaults are safe and local; with OPSPULSE_ENV=production every secret
must come from the environment or the process refuses to start.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import dj_database_url

from config.env import env_bool, env_float, env_int, env_list, env_secret, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("OPSPULSE_VAR_DIR", str(BASE_DIR / "var")))

PRODUCTION = env_str("OPSPULSE_ENV", "development") == "production"
DEBUG = env_bool("DEBUG", default=not PRODUCTION)
if PRODUCTION and DEBUG:
    from django.core.exceptions import ImproperlyConfigured

    # Debug pages show settings and tracebacks, and /dev/mail/ shows every mail sent.
    raise ImproperlyConfigured("DEBUG must be off in production")


def _development_secret(name: str) -> str:
    """A random secret kept under ./var/ so that restarts keep sessions valid."""
    path = VAR_DIR / "secrets" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env_secret("SECRET_KEY", required=PRODUCTION) or _development_secret("secret_key")
# Key ring for credentials encrypted at rest: "kid:base64key,kid2:base64key", first is current.
FIELD_ENCRYPTION_KEYS = env_secret("FIELD_ENCRYPTION_KEYS", required=PRODUCTION)
if not FIELD_ENCRYPTION_KEYS:
    from opspulse.lib.crypto import development_key_ring

    FIELD_ENCRYPTION_KEYS = development_key_ring(VAR_DIR / "secrets" / "field_keys")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"])
if PRODUCTION and not ALLOWED_HOSTS:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("ALLOWED_HOSTS must be set in production")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.usersessions",
    "channels",
    "procrastinate.contrib.django",
    "opspulse.accounts",
    "opspulse.stores",
    "opspulse.ingest",
    "opspulse.commerce",
    "opspulse.metrics",
    "opspulse.alerts",
    "opspulse.privacy",
    "opspulse.platforms",
    "opspulse.platforms.shopify",
    "opspulse.live",
    "opspulse.sim",
    # The processes' entry points (`manage.py worker`, with its queues).
    "config",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "opspulse.accounts.middleware.SessionActivityMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
    # The dashboard templates rendered for every new order or store read (opspulse.live.jinja),
    # in apps' jinja2/.
    {
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "APP_DIRS": True,
        "OPTIONS": {"environment": "opspulse.live.jinja.environment"},
    },
]

# Database: DATABASE_URL, or the embedded development server under ./var/.
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL)}
elif PRODUCTION:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("DATABASE_URL must be set in production")
else:
    from opspulse.lib import embedded_postgres

    _params = embedded_postgres.ensure_running(VAR_DIR)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _params["dbname"],
            "USER": _params["user"],
            "HOST": _params["host"],
            "PASSWORD": "",
        }
    }
    DATABASE_URL = embedded_postgres.url_from_params(_params)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Each process takes its connections from a pool (Django's, psycopg_pool): under ASGI
# every request runs in a thread of its own, so connections kept per thread
# (CONN_MAX_AGE) would never be reused and every request would open one.
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
    "min_size": env_int("DATABASE_POOL_MIN_SIZE", 2),
    "max_size": env_int("DATABASE_POOL_MAX_SIZE", 20),
    # A request waits this long for a connection before failing.
    "timeout": env_float("DATABASE_POOL_TIMEOUT", 10),
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "opspulse.accounts.passwords.MaximumLengthValidator"},
    {"NAME": "opspulse.accounts.passwords.RepetitivePasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
# Reset links (Django's token: voided by a password change or a new sign-in) last an hour.
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT", 3600)

# Sign-up, sign-in, email confirmation, password reset, sessions and two-factor:
# django-allauth (accounts, mfa, usersessions), configured here and in
# opspulse.accounts.adapter.
ACCOUNT_ADAPTER = "opspulse.accounts.adapter.AccountAdapter"
ACCOUNT_SIGNUP_FORM_CLASS = "opspulse.accounts.forms.SignupForm"
USERSESSIONS_ADAPTER = "opspulse.accounts.adapter.UserSessionsAdapter"
MFA_ADAPTER = "opspulse.accounts.adapter.MFAAdapter"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS = 3
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_CHANGE_EMAIL = True
ACCOUNT_EMAIL_NOTIFICATIONS = True
ACCOUNT_REAUTHENTICATION_REQUIRED = True
ACCOUNT_REAUTHENTICATION_TIMEOUT = 300
ACCOUNT_PREVENT_ENUMERATION = True
# None: the sign-in form shows "Remember me"; without it the session ends with the browser.
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = False
ACCOUNT_PASSWORD_INPUT_RENDER_VALUE = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[OpsPulse] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if PRODUCTION else "http"
# Per client IP ("ip") and per email address ("key"); counted in the shared cache, so
# every web process sees the same attempts.
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "10/m/ip,50/h/ip",
    "reset_password": "10/m/ip,5/h/key",
    "reset_password_from_key": "20/m/ip",
    "confirm_email": "1/3m/key",
    "change_password": "5/m/user",
    "manage_email": "10/m/user",
    "reauthenticate": "10/m/user",
}
# The client address is the peer's, unless the web server sits behind proxies that
# append to X-Forwarded-For: then set TRUSTED_PROXY_COUNT to their number.
ALLAUTH_TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
ALLAUTH_TRUSTED_CLIENT_IP_HEADER = env_str("TRUSTED_CLIENT_IP_HEADER") or None
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "OpsPulse"
MFA_RECOVERY_CODE_COUNT = 10
# A code from the authenticator's previous or next 30-second window is accepted (clock drift).
MFA_TOTP_TOLERANCE = 1
USERSESSIONS_TRACK_ACTIVITY = True

# Rate-limit counters and other short-lived shared state, in PostgreSQL (the
# opspulse_cache table, made by a migration) unless CACHE_URL names Redis.
CACHE_URL = env_str("CACHE_URL")
if CACHE_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "opspulse_cache"}}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "opspulse" / "static"]
# In development WhiteNoise serves straight from the source folders (no collectstatic).
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# Live updates: "postgres" (NOTIFY from the writing transaction, one LISTEN per web
# process, in-memory fan-out) or "redis" (channels_redis, for several hosts).
LIVE_TRANSPORT = env_str("LIVE_TRANSPORT", "postgres")
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
if LIVE_TRANSPORT == "redis":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "capacity": 500, "expiry": 30},
        }
    }
elif LIVE_TRANSPORT == "postgres":
    # No channel layer: each web process's listener hands messages, resyncs and
    # sign-outs to its dashboards directly (opspulse.live.listener). Channels'
    # in-memory layer would scan every socket's channel and group on each receive.
    CHANNEL_LAYERS = {}
else:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("LIVE_TRANSPORT must be 'postgres' or 'redis'")
# The share of one core that a web process's dashboard renders may take; under more
# load a store's frames come less often (opspulse.live.hub).
LIVE_RENDER_SHARE = env_float("LIVE_RENDER_SHARE", 0.5)

# Shopify app (Partner Dashboard → the app's client credentials). Without them the
# "Add Shopify store" button explains that the app is not configured.
SHOPIFY_CLIENT_ID = env_str("SHOPIFY_CLIENT_ID")
SHOPIFY_CLIENT_SECRET = env_secret("SHOPIFY_CLIENT_SECRET", required=False)
# During a client secret rotation Shopify may sign webhooks with the old one for an hour.
SHOPIFY_PREVIOUS_CLIENT_SECRET = env_secret("SHOPIFY_PREVIOUS_CLIENT_SECRET", required=False)
# What OpsPulse reads, and nothing more: orders (with line items and customers' first
# names and cities), products for SKUs, inventory levels.
SHOPIFY_SCOPES = env_list("SHOPIFY_SCOPES", ["read_orders", "read_products", "read_inventory"])
SHOPIFY_API_VERSION = env_str("SHOPIFY_API_VERSION", "2026-10")
# Admin API calls to one store start at least this far apart, across every process:
# 2 calls per second at most, with room for a call delayed on its way (a process waking
# up late, a busy network) so that three never reach Shopify within one second.
SHOPIFY_CALL_SPACING_SECONDS = 0.75
# Where a shop's admin lives; a Shopify stand-in (the development one in opspulse.sim)
# is used by pointing this elsewhere, e.g. "http://127.0.0.1:8701/shops/{shop}".
SHOPIFY_SHOP_URL_TEMPLATE = env_str("SHOPIFY_SHOP_URL_TEMPLATE", "https://{shop}")


def _shop_origin(template: str) -> str:
    """The CSP source of every shop's admin: https://*.myshopify.com, or a stand-in's origin."""
    from urllib.parse import urlsplit

    parts = urlsplit(template.format(shop="shop.myshopify.com"))
    if parts.hostname == "shop.myshopify.com":
        return f"{parts.scheme}://*.myshopify.com"
    return f"{parts.scheme}://{parts.netloc}"


# The public address of OpsPulse, for the OAuth redirect URI and webhook subscriptions.
PUBLIC_URL = env_str("PUBLIC_URL", "" if PRODUCTION else "http://127.0.0.1:8000").rstrip("/")
if PRODUCTION and SHOPIFY_CLIENT_ID and not PUBLIC_URL.startswith("https://"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("PUBLIC_URL must be the https:// address of OpsPulse when the Shopify app is set")

# Ingest
WEBHOOK_MAX_BODY_BYTES = env_int("WEBHOOK_MAX_BODY_BYTES", 1024 * 1024)
INGEST_POOL_MAX_SIZE = env_int("INGEST_POOL_MAX_SIZE", 10)
# Seconds a store's lookup (id, decrypted webhook secrets) is reused by the ingest endpoint.
# A new secret is picked up at once (a failing signature looks the store up again); a
# removed secret or store stops being accepted within this time.
INGEST_STORE_CACHE_SECONDS = env_int("INGEST_STORE_CACHE_SECONDS", 30)
# Failed webhook signatures a client address may send in a minute before further
# failing ones are answered 429 (correctly signed webhooks are always accepted).
WEBHOOK_FAILED_SIGNATURES_PER_MINUTE = env_int("WEBHOOK_FAILED_SIGNATURES_PER_MINUTE", 60)
# Seconds a webhook waits for a database connection before the answer is 503.
INGEST_POOL_TIMEOUT = env_int("INGEST_POOL_TIMEOUT", 5)
# Processing attempts for a delivery that keeps failing on a transient error.
DELIVERY_MAX_ATTEMPTS = env_int("DELIVERY_MAX_ATTEMPTS", 5)
DRAIN_BATCH_SIZE = env_int("DRAIN_BATCH_SIZE", 200)
# Stores share this many drain lanes (one running job each); changing it is safe.
DRAIN_LANES = env_int("DRAIN_LANES", 4)
# A delivery that failed for a passing reason is tried again after about this many
# seconds, doubling (with jitter) on every attempt.
DELIVERY_RETRY_BASE_SECONDS = env_float("DELIVERY_RETRY_BASE_SECONDS", 1.0)
# A worker that takes the ingest queue runs a drainer (opspulse.ingest.drainer), which
# takes webhooks as they arrive; without one (false), drain jobs carry them, each
# woken by NOTIFY or found by the poll.
WORKER_DRAINER = env_bool("WORKER_DRAINER", True)
# A worker's drainer reads its lanes at least this often when
# no notification wakes it, and tries as often to take the lanes it does not own.
DRAIN_IDLE_POLL_SECONDS = env_float("DRAIN_IDLE_POLL_SECONDS", 5.0)
# A drain job hands over to a successor after this long (between batches: one batch,
# e.g. a shop's erasure, runs for as long as it needs).
DRAIN_JOB_MAX_SECONDS = env_float("DRAIN_JOB_MAX_SECONDS", 20)
# Retention: the daily maintenance job (opspulse.ingest.retention) removes what is no
# longer needed; a period of 0 keeps that kind of data for ever.
# Days a processed webhook keeps its body whole; then only what reconciliation and
# debugging need stays (ids, topic, times, statuses, totals, line items).
WEBHOOK_BODY_RETENTION_DAYS = env_int("WEBHOOK_BODY_RETENTION_DAYS", 7)
# Days a failed webhook keeps its body for a retry; then it is scrubbed as well and
# can no longer be retried.
WEBHOOK_FAILED_BODY_RETENTION_DAYS = env_int("WEBHOOK_FAILED_BODY_RETENTION_DAYS", 30)
# Days a customer data request's export stays downloadable before it is deleted.
PRIVACY_EXPORT_RETENTION_DAYS = env_int("PRIVACY_EXPORT_RETENTION_DAYS", 7)
# Days finished, failed, cancelled and aborted jobs stay in the queue's tables.
FINISHED_JOB_RETENTION_DAYS = env_int("FINISHED_JOB_RETENTION_DAYS", 30)
# When the maintenance job runs (cron, UTC).
MAINTENANCE_CRON = env_str("MAINTENANCE_CRON", "17 3 * * *")
# `manage.py worker` slots per queue: webhook processing ("ingest") has its own, so it
# never waits behind alert posts and mail ("alerts") or Shopify API calls ("shopify").
WORKER_CONCURRENCY = env_str("WORKER_CONCURRENCY", "ingest=4,alerts=4,shopify=2,maintenance=2")
PROCRASTINATE_WORKER_DEFAULTS = {
    # `manage.py worker` is woken by a NOTIFY for each job deferred (config.worker);
    # what only a poll finds (a retry coming due, a job whose lock freed) and jobs
    # deferred while its LISTEN connection is down wait this long at most. Webhooks
    # do not wait for it: the worker's drainer takes them.
    "fetch_job_polling_interval": env_int("WORKER_POLL_MS", 1000) / 1000,
    "delete_jobs": "successful",
    # A worker silent for this long counts as dead; the sweep (every 15 s) then re-runs
    # its jobs. A job of a live worker is never ended for taking long.
    "update_heartbeat_interval": env_float("WORKER_HEARTBEAT_SECONDS", 10),
    "stalled_worker_timeout": env_float("WORKER_STALLED_SECONDS", 30),
}


# Email: SMTP from the environment in production; in development every mail is kept
# under ./var/mail/ for the local mailbox page, with one line in the terminal.
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD", required=False)
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if PRODUCTION else "opspulse.lib.mailbox.DevelopmentEmailBackend",
)
EMAIL_FILE_PATH = Path(env_str("EMAIL_FILE_PATH", str(VAR_DIR / "mail")))
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "OpsPulse <alerts@opspulse.localhost>")

# Alert webhook channels: seconds a post has, from connecting to the reply's last byte,
# and how many posts of one account may be under way at once.
ALERT_WEBHOOK_TIMEOUT_SECONDS = env_float("ALERT_WEBHOOK_TIMEOUT_SECONDS", 10)
ALERT_DELIVERIES_PER_ACCOUNT = env_int("ALERT_DELIVERIES_PER_ACCOUNT", 2)
# Outbound calls to merchant-chosen URLs reach public addresses on ports 443 (and 80
# outside production) only (opspulse.lib.http); development servers and tests that
# post to receivers on 127.0.0.1 turn this on explicitly.
OUTBOUND_ALLOW_PRIVATE_ADDRESSES = env_bool("OUTBOUND_ALLOW_PRIVATE_ADDRESSES", False)

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 14 * 24 * 3600)
CSRF_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Every page works without inline scripts or styles; htmx's own indicator styles are
# off (see the htmx-config meta tag in templates/base.html). The live dashboard's
# socket is same-origin ('self' covers ws: and wss: of the page's host).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        # The "Add Shopify store" form redirects to the shop's install page.
        "form-action": ["'self'", _shop_origin(SHOPIFY_SHOP_URL_TEMPLATE)],
        "frame-ancestors": ["'none'"],
    }
}
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    if not EMAIL_HOST:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("EMAIL_HOST must be set in production")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Every handler redacts secrets and personal data from what it writes (opspulse.lib.logging).
    "filters": {
        "redact": {"()": "opspulse.lib.logging.RedactSecrets"},
        "client_errors": {"()": "opspulse.lib.logging.ClientErrorsWithoutTraceback"},
    },
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["client_errors", "redact"]},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own console handler (with DEBUG on) would print its records a second
        # time, unredacted: they reach ours through the root logger only, at LOG_LEVEL.
        "django": {"handlers": [], "level": "NOTSET"},
        "procrastinate": {"level": "WARNING"},
        "pgserver": {"level": "WARNING"},
        # HTTP clients log each request's URL at INFO, and an alert webhook's URL is its secret.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
        # The web server's own handlers would write unredacted: its records go to ours instead.
        # Its INFO lines (every connection, every socket) are shown only with LOG_LEVEL=DEBUG,
        # as `--log-level warning` had them before Django's configuration reset its loggers.
        "uvicorn": {
            "propagate": True,
            "level": "DEBUG" if env_str("LOG_LEVEL", "INFO").upper() == "DEBUG" else "WARNING",
        },
        "uvicorn.access": {"propagate": True},
    },
}
