"""Django settings for the RUCKUS server, read from the environment with django-environ.

Embedded default (demo, development): a SQLite file under ``RUCKUS_DATA_DIR`` and an in-memory channel
layer. Production: ``DATABASE_URL`` pointing at Postgres and ``REDIS_URL`` for the channel layer.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import environ
import structlog
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A .env file next to manage.py is optional; real environment variables win over it.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG: bool = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off (set SECRET_KEY or DEBUG=1)")
    SECRET_KEY = "ruckus-development-only-insecure-key"  # noqa: S105  # nosec B105  # only with DEBUG on

#: The example env files' placeholders: a server started with one of them left in place refuses to start.
PLACEHOLDER_SECRET_MARK = "change-me"  # noqa: S105  # nosec B105  # the placeholder we refuse, not a secret


def refuse_placeholder(name: str, value: str) -> None:
    """Stop at start-up when a secret still holds the example files' placeholder (DEBUG off only).

    Args:
        name: The setting's name (in the error).
        value: Its value.

    Raises:
        ImproperlyConfigured: The value contains ``change-me``.
    """
    if not DEBUG and PLACEHOLDER_SECRET_MARK in value.lower():
        raise ImproperlyConfigured(
            f"{name} still holds the example placeholder ({PLACEHOLDER_SECRET_MARK!r}); set a real secret, e.g. "
            'python -c "import secrets; print(secrets.token_urlsafe(50))"'
        )


refuse_placeholder("SECRET_KEY", SECRET_KEY)

ALLOWED_HOSTS: list[str] = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS: list[str] = env.list("CSRF_TRUSTED_ORIGINS", default=[])

RUCKUS_DATA_DIR = Path(env.str("RUCKUS_DATA_DIR", default=str(BASE_DIR / "data" / "server")))

INSTALLED_APPS = [
    "daphne",
    # The admin with login throttling (ruckus_server.admin_site).
    "ruckus_server.admin_apps.RuckusAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "channels",
    "django_structlog",
    "core",
    "agents",
    "experiments",
    "results",
    "scheduling",
    "ruckus_server",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_structlog.middlewares.RequestMiddleware",
    # A query parameter with a NUL character is a 400 naming it, not a database error.
    "core.middleware.QueryParamGuardMiddleware",
]

ROOT_URLCONF = "ruckus_server.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = None
ASGI_APPLICATION = "ruckus_server.asgi.application"

# --- Database ------------------------------------------------------------------------------------
_default_sqlite = f"sqlite:///{RUCKUS_DATA_DIR / 'ruckus.sqlite3'}"
DATABASES = {"default": env.db_url("DATABASE_URL", default=_default_sqlite)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Server, scheduler and (in the demo) the CLI write at once: WAL lets readers proceed during a write,
    # the busy timeout waits instead of failing, and IMMEDIATE takes the write lock at BEGIN so two writers
    # never deadlock upgrading read locks ("database is locked").
    RUCKUS_DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
        }
    )
else:
    # Connections come from a pool in each process (psycopg_pool, Django's "pool" option): a new Postgres connection
    # per request cost more than the whole heartbeat it served. Under ASGI each request runs on a thread of its
    # own, so persistent connections (CONN_MAX_AGE) would pile up; the pool hands connections back at the end of
    # each request. DB_POOL_MAX_SIZE=0 turns the pool off (then DB_CONN_MAX_AGE applies; pgbouncer in front of a
    # large deployment is docs/deployment.md's advice). Off by default with DEBUG, where tests open and close
    # connections by the thousand.
    _pool_max_size = env.int("DB_POOL_MAX_SIZE", default=0 if DEBUG else 20)
    if _pool_max_size > 0:
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": min(env.int("DB_POOL_MIN_SIZE", default=2), _pool_max_size),
            "max_size": _pool_max_size,
            "timeout": env.float("DB_POOL_TIMEOUT_S", default=30.0),
        }
        DATABASES["default"]["CONN_MAX_AGE"] = 0
    else:
        DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=0))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channels ------------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")


def redis_channel_layer(url: str) -> dict[str, object]:
    """The Redis channel layer's settings for a Redis URL.

    The layer waits for messages with BZPOPMIN blocking for 5 s; redis-py 8 also defaults its socket read timeout to
    5 s, so an idle connection's read timed out just as Redis answered and the consumer died (the websocket closed
    with 1011). The read timeout must exceed the blocking time.

    Args:
        url: ``redis://host:port/db``.
    """
    return {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [{"address": url, "socket_timeout": 30, "socket_connect_timeout": 5}]},
    }


if REDIS_URL:
    CHANNEL_LAYERS = {"default": redis_channel_layer(REDIS_URL)}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Auth, i18n, static --------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
# WhiteNoise warns on every start when the directory is missing (collectstatic not run yet).
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
_frontend_dist = BASE_DIR / "frontend" / "dist"
STATICFILES_DIRS = [_frontend_dist] if _frontend_dist.is_dir() else []
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# Serve static files straight from the finders when collectstatic has not been run (demo, tests).
WHITENOISE_USE_FINDERS = True
WHITENOISE_MANIFEST_STRICT = False

# --- Cache (login throttles) -------------------------------------------------------------------
# Shared by every server process, or a limit would be multiplied by the number of processes: Redis when there is
# one, else a table in the database (created by the core app's migration).
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                          "KEY_PREFIX": "ruckus"}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "ruckus_cache"}}

# --- Production security (``manage.py check --deploy`` passes with the defaults when DEBUG is off) ------------
if not DEBUG:
    # Behind TLS: the HTTPS redirect, secure cookies and HSTS. A plain-HTTP set-up (a private network without TLS)
    # must turn these off explicitly; the health checks are never redirected (probes speak plain HTTP).
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
# Behind a TLS-terminating proxy, RUCKUS_BEHIND_PROXY (below) makes Django trust its X-Forwarded-Proto.
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# --- API tokens (django-rest-knox): only a hash is stored; they expire and can be revoked ----------------------
RUCKUS_TOKEN_TTL_HOURS: float = env.float("RUCKUS_TOKEN_TTL_HOURS", default=168.0)
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=RUCKUS_TOKEN_TTL_HOURS) if RUCKUS_TOKEN_TTL_HOURS > 0 else None,
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}

# --- Login throttles (core.throttling): per client address and per user name, in the shared cache ------------
RUCKUS_LOGIN_THROTTLE: str = env.str("RUCKUS_LOGIN_THROTTLE", default="20/min")
RUCKUS_LOGIN_USER_THROTTLE: str = env.str("RUCKUS_LOGIN_USER_THROTTLE", default="10/min")

# --- REST framework ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header turns refusals into proper 401s for API clients.
        "core.auth.KnoxTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Each view declares who may call each of its actions (core.permissions); an endpoint without a rule is closed.
    "DEFAULT_PERMISSION_CLASSES": ["core.permissions.RolePermission"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
        "rest_framework.filters.SearchFilter",
    ],
    # Bodies nested deeper than RUCKUS_MAX_JSON_DEPTH, or with NUL characters or lone surrogates, are a 400
    # naming the field (core.parsers): the database could not store them.
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONParser", "core.parsers.FormParser", "core.parsers.MultiPartParser"],
    # limit/offset checked (400 naming the parameter), limit capped at RUCKUS_MAX_PAGE_SIZE.
    "DEFAULT_PAGINATION_CLASS": "core.pagination.Pagination",
    # A body Django refuses to read (too many fields, too large, malformed multipart) is a 400 in the API's format.
    "EXCEPTION_HANDLER": "core.exceptions.exception_handler",
    # OPTIONS on a view without a serializer (the agents' callbacks) describes it instead of failing.
    "DEFAULT_METADATA_CLASS": "core.metadata.Metadata",
    "PAGE_SIZE": env.int("RUCKUS_PAGE_SIZE", default=50),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # ``?format=`` selects the export format (csv|json), not a DRF renderer.
    "URL_FORMAT_OVERRIDE": None,
    # Client addresses for throttles: how many proxies' X-Forwarded-For hops to trust. 0 (no proxy) means the
    # socket's address only, so a client cannot pick its own address by sending that header.
    "NUM_PROXIES": env.int("RUCKUS_NUM_PROXIES", default=1 if env.bool("RUCKUS_BEHIND_PROXY", default=False) else 0),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "RUCKUS API",
    "DESCRIPTION": "Benchmark ML models across a fleet of heterogeneous hardware.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Only the health endpoints are anonymous; the docs need a login (session via /api-auth/login/).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Every operation's common error answers (400/401/403/404) are declared once (core.openapi).
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "core.openapi.add_error_responses"],
    # The API speaks JSON; the form parsers stay for DRF's browsable API but are not part of the API's contract.
    "PARSER_WHITELIST": ["core.parsers.JSONParser"],
    "ENUM_NAME_OVERRIDES": {
        # The status vocabulary is defined once (common.statuses); the UI's generated types name these enums.
        "JobStatusEnum": "common.statuses.JobStatus.choices",
        "ExperimentStatusEnum": "common.statuses.ExperimentStatus.choices",
        "AgentStatusEnum": "common.statuses.AgentStatus.choices",
        "AttemptStatusEnum": "common.statuses.AttemptStatus.choices",
        "AgentActivityEnum": "common.statuses.AgentActivity.choices",
        "AgentModeEnum": "common.statuses.AgentMode.choices",
        "ScoringStatusEnum": "common.statuses.ScoringStatus.choices",
        # The axis of a load sweep (common.protocol.LoadSpec.mode), apart from an agent's push/pull mode.
        "LoadModeEnum": [("concurrency", "concurrency"), ("request_rate", "request_rate")],
    },
}

# --- RUCKUS tunables -----------------------------------------------------------------------------
RUCKUS_HEARTBEAT_INTERVAL_S: float = env.float("RUCKUS_HEARTBEAT_INTERVAL_S", default=5.0)
# Heartbeats per second the deployment is sized to absorb: a fleet larger than this rate times the interval above is
# told a longer interval (agents.liveness), at most RUCKUS_HEARTBEAT_INTERVAL_MAX_S. 0 keeps the interval fixed.
RUCKUS_HEARTBEAT_MAX_RATE: float = env.float("RUCKUS_HEARTBEAT_MAX_RATE", default=1000.0)
RUCKUS_HEARTBEAT_INTERVAL_MAX_S: float = env.float("RUCKUS_HEARTBEAT_INTERVAL_MAX_S", default=60.0)
RUCKUS_AGENT_LOST_AFTER_S: float = env.float("RUCKUS_AGENT_LOST_AFTER_S", default=30.0)
# Dispatch: a scheduler pass claims jobs for at most this long before the health steps run again, and sends the
# claimed jobs to their agents with this many calls in flight (1: one after the other, on the scheduler's thread).
RUCKUS_DISPATCH_PASS_BUDGET_S: float = env.float("RUCKUS_DISPATCH_PASS_BUDGET_S", default=5.0)
RUCKUS_DISPATCH_CONCURRENCY: int = env.int("RUCKUS_DISPATCH_CONCURRENCY", default=16)
# Websocket events are built and sent by a thread of their own in each process (core.events.Publisher); 0 sends each
# one on the writer's thread, after its commit.
RUCKUS_EVENTS_IN_BACKGROUND: bool = env.bool("RUCKUS_EVENTS_IN_BACKGROUND", default=True)
RUCKUS_MAX_ATTEMPTS: int = env.int("RUCKUS_MAX_ATTEMPTS", default=3)
RUCKUS_RETRY_BACKOFF_BASE_S: float = env.float("RUCKUS_RETRY_BACKOFF_BASE_S", default=5.0)
RUCKUS_RETRY_BACKOFF_MAX_S: float = env.float("RUCKUS_RETRY_BACKOFF_MAX_S", default=300.0)
RUCKUS_JOB_LEASE_S: float = env.float("RUCKUS_JOB_LEASE_S", default=3600.0)
# An attempt still "dispatching" after this long was left by a scheduler that died between claim and send.
RUCKUS_DISPATCH_STALE_S: float = env.float("RUCKUS_DISPATCH_STALE_S", default=30.0)
# A running attempt with no news for this long is checked directly on the agent (pull fallback).
RUCKUS_PULL_AFTER_S: float = env.float("RUCKUS_PULL_AFTER_S", default=20.0)
RUCKUS_AGENT_HTTP_TIMEOUT_S: float = env.float("RUCKUS_AGENT_HTTP_TIMEOUT_S", default=10.0)
# Whether run_scheduler also scores stored results (ROUGE, statistics) in a thread of its own: a one-scheduler
# deployment and the demo need no other process. Off where dedicated `run_scoring_worker` processes do it.
RUCKUS_SCHEDULER_SCORING: bool = env.bool("RUCKUS_SCHEDULER_SCORING", default=True)
# Networks the server may call agents in. Loopback only with DEBUG (the demo runs its agent there): in production
# a user registering http://127.0.0.1:PORT would otherwise reach the server host's own services.
RUCKUS_AGENT_ALLOWED_NETWORKS: list[str] = env.list(
    "RUCKUS_AGENT_ALLOWED_NETWORKS",
    default=[*(["127.0.0.0/8", "::1/128"] if DEBUG else []), "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
             "fc00::/7"],
)
RUCKUS_REGISTRATION_KEY: str = env.str("RUCKUS_REGISTRATION_KEY", default="")
refuse_placeholder("RUCKUS_REGISTRATION_KEY", RUCKUS_REGISTRATION_KEY)
# Where agents call the server. Unset: the address that reached the server when the agent was registered (the
# registration request's scheme and host), which is right whenever agents and users reach the server alike.
RUCKUS_PUBLIC_URL: str = env.str("RUCKUS_PUBLIC_URL", default="").rstrip("/")
# Behind a reverse proxy (it must set X-Forwarded-Proto/Host/Port): only then do those headers count, through
# Django's own settings. Off, a client could otherwise pick the address agents are told to call.
RUCKUS_BEHIND_PROXY: bool = env.bool("RUCKUS_BEHIND_PROXY", default=False)
if RUCKUS_BEHIND_PROXY:
    USE_X_FORWARDED_HOST = True
    USE_X_FORWARDED_PORT = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Longest time the server holds a pull agent's work request open when there is nothing for it.
RUCKUS_PULL_WAIT_S: float = env.float("RUCKUS_PULL_WAIT_S", default=25.0)
# Seconds between two checks for work while a pull agent's request is held.
RUCKUS_PULL_CHECK_S: float = env.float("RUCKUS_PULL_CHECK_S", default=0.5)
# Timeout of the scheduler's direct check of a push agent that went silent (is it alive, and why are its
# heartbeats not arriving?). Short: a cut link must not stall the scheduler's pass.
RUCKUS_AGENT_PROBE_TIMEOUT_S: float = env.float("RUCKUS_AGENT_PROBE_TIMEOUT_S", default=2.0)
# The most items one page of a list holds (a larger ``?limit=`` is lowered to it).
RUCKUS_MAX_PAGE_SIZE: int = env.int("RUCKUS_MAX_PAGE_SIZE", default=1000)
# The deepest nesting of objects and arrays a JSON request body may have (deeper: 400 naming the field).
RUCKUS_MAX_JSON_DEPTH: int = env.int("RUCKUS_MAX_JSON_DEPTH", default=32)
# The largest result body an agent may send (413 beyond, before it is read): a load sweep carries every request's
# timings, about 200 bytes per request plus 20 per streamed chunk. Other requests keep DATA_UPLOAD_MAX_MEMORY_SIZE.
RUCKUS_MAX_RESULT_BYTES: int = env.int("RUCKUS_MAX_RESULT_BYTES", default=256 * 1024 * 1024)

# --- Logging (structlog) -------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="console" if DEBUG else "json")

_shared_processors = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
]

# request_started says nothing request_finished does not (it has the method, path and status, and the duration is
# in the access log): at a fleet's request rates it doubled the log volume.
DJANGO_STRUCTLOG_STATUS_START_LOG_LEVEL = logging.DEBUG

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": structlog.stdlib.ProcessorFormatter,
            "processors": [
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
            "foreign_pre_chain": _shared_processors,
        },
        "console": {
            "()": structlog.stdlib.ProcessorFormatter,
            "processors": [
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                # Plain tracebacks: the default rich renderer prints every frame's locals, whose repr can run
                # queries (Django querysets) and show secrets, and takes seconds per error in a failing loop.
                structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback),
            ],
            "foreign_pre_chain": _shared_processors,
        },
    },
    "filters": {"quiet_heartbeats": {"()": "core.logfilters.QuietHeartbeats"}},
    "handlers": {
        "default": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            # RUCKUS_LOG_HEARTBEATS=1 logs every successful heartbeat's request too (core.logfilters).
            "filters": [] if env.bool("RUCKUS_LOG_HEARTBEATS", default=False) else ["quiet_heartbeats"],
        }
    },
    "root": {"handlers": ["default"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        "django_structlog": {"level": LOG_LEVEL},
    },
}

structlog.configure(
    processors=[
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.filter_by_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.UnicodeDecoder(),
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ],
    logger_factory=structlog.stdlib.LoggerFactory(),
    cache_logger_on_first_use=True,
)
