"""IOI, Institutional ORCID Integration: the Flask application factory."""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask, abort, send_from_directory
from werkzeug.middleware.proxy_fix import ProxyFix

from ioi.config import PROJECT_ROOT, Settings, load_settings
from ioi.extensions import csrf, db, migrate

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
IMAGES = PROJECT_ROOT / "images"


def create_app(overrides: dict | None = None) -> Flask:
    """Build the app. `overrides` may hold settings (by their env names) and plain Flask config.

    Reads and checks the configuration (raising ConfigError), but never touches the database.
    """
    overrides = dict(overrides or {})
    setting_overrides = {k: overrides.pop(k) for k in list(overrides) if k in Settings.model_fields}
    settings = load_settings(setting_overrides)

    app = Flask(
        __name__,
        instance_path=str(PROJECT_ROOT / "instance"),
        static_folder=str(PROJECT_ROOT / "public" / "static"),
        static_url_path="/static",
    )
    app.config.from_mapping(settings.model_dump())
    database_url = settings.database_url(Path(app.instance_path))
    if database_url.startswith("sqlite:///"):
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    https = settings.OAUTH_REDIRECT_URI.startswith("https://")
    app.config.update(
        SECRET_KEY=settings.SECRET_KEY or secrets.token_hex(32),
        SQLALCHEMY_DATABASE_URI=database_url,
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(database_url),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=https,
        MAX_CONTENT_LENGTH=64 * 1024 * 1024,
    )
    app.config.update(overrides)
    app.extensions["ioi.settings"] = settings

    if settings.IOI_PROXY_COUNT:
        n = settings.IOI_PROXY_COUNT
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_prefix=n)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS))
    csrf.init_app(app)
    _register_blueprints(app)
    _register_shared_routes(app)
    return app


def _engine_options(url: str) -> dict:
    if url.startswith("mysql"):
        return {"pool_pre_ping": True, "pool_recycle": 3600}
    return {}


def _register_blueprints(app: Flask) -> None:
    from ioi.admin import bp as admin_bp
    from ioi.orcid import bp as orcid_bp
    from ioi.query import bp as query_bp

    app.register_blueprint(orcid_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(query_bp)


def _register_shared_routes(app: Flask) -> None:
    # Forms may lead only here and to ORCID's authorize page (the permissions form is answered by
    # a redirect there, which `form-action` also governs). No inline scripts or styles anywhere.
    authorize = urlsplit(settings_of(app).OAUTH_AUTHORIZATION_URL or "")
    policy = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        f"frame-ancestors 'none'; form-action 'self' {authorize.scheme}://{authorize.netloc}"
    )

    @app.get("/images/<path:filename>")
    def images(filename: str):
        """The institution's logo and other branding images from the top-level images/ folder."""
        if filename.startswith("."):
            abort(404)
        return send_from_directory(IMAGES, filename, max_age=3600)

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Content-Security-Policy", policy)
        if app.config["SESSION_COOKIE_SECURE"]:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response


def settings_of(app: Flask) -> Settings:
    """The validated settings object of an app built by create_app."""
    return app.extensions["ioi.settings"]
