"""Views of the researcher page: each parses the request, calls a service, then renders or redirects."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import abort, current_app, flash, redirect, render_template, request, session, url_for

from ioi import settings_of
from ioi.auth import Identity, current_identity, is_admin, log_in, log_out, login_required
from ioi.extensions import db
from ioi.orcid import bp
from ioi.orcid.forms import ActionForm, LoginForm, PermissionsForm
from ioi.services import connect, login, review
from ioi.services.orcid_api import make_client
from ioi.services.people import create_person_from_identity
from ioi.timeutil import now as local_now

PROCESS = "researcherPage"  # the orcidCalls process name of this page's ORCID calls
STATE_KEY = "oauth_state"
INVALID_STATE = "Invalid state. Your session may have timed out; please sign in and try again."


@bp.get("", strict_slashes=False)
def index():
    """The page: OAuth callback, sign-in, or the person's ORCID status."""
    settings = settings_of(current_app)
    if "code" in request.args or "error" in request.args:
        return _callback()
    identity = current_identity()
    if settings.IOI_AUTH == "header":
        try:
            from_headers = login.identity_from_headers(settings, request.headers)
        except login.LoginFailed as exc:
            return render_template("orcid/sso_problem.html", message=str(exc)), 403
        if from_headers is not None and (identity is None or identity.person_id != from_headers.person_id):
            identity = _start_session(from_headers)
            if request.args.get("next"):
                return redirect(_safe_next(request.args.get("next")))
        if identity is None:
            return render_template("orcid/sso_problem.html", message=None), 403
    if identity is None:
        form = LoginForm(next=_safe_next(request.args.get("next")))
        return render_template("orcid/login.html", form=form)
    return _status_page(identity)


def _status_page(identity: Identity):
    settings = settings_of(current_app)
    now = local_now()
    link = connect.connection(settings, identity.person_id, now)
    summary = None
    if link.may_review(settings.ORCID_MEMBER):
        summary = review.build_review(identity.person_id, identity.name, link.orcid, settings.ORCID_MEMBER)
    form = PermissionsForm(
        read_limited=link.can_read if link.token else True,
        activities_update=link.can_update if link.token else True,
    )
    return render_template(
        "orcid/index.html",
        identity=identity,
        link=link,
        summary=summary,
        form=form,
        action=ActionForm(),
        admin=is_admin(identity.email),
    )


@bp.post("/login")
def login_submit():
    """Check the campus username and password; a new session on success."""
    settings = settings_of(current_app)
    if settings.IOI_AUTH != "ldap":
        abort(404)
    form = LoginForm()
    if not form.validate_on_submit():
        flash("Please enter your campus username and password.", "error")
        return render_template("orcid/login.html", form=form), 400
    now = local_now()
    ip = request.remote_addr or "unknown"
    try:
        identity = login.ldap_login(settings, form.username.data, form.password.data, ip, now)
    except login.DirectoryDown as exc:
        db.session.rollback()
        first = login.note_directory_down(exc.detail, now)
        db.session.commit()
        if first:
            login.email_directory_down(settings, exc.detail, now)
        flash(str(exc), "error")
        return render_template("orcid/login.html", form=LoginForm(next=form.next.data)), 503
    except login.TooManyAttempts as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return render_template("orcid/login.html", form=LoginForm(next=form.next.data)), 429
    except login.LoginFailed as exc:
        db.session.commit()  # keeps the failure count
        flash(str(exc), "error")
        return render_template("orcid/login.html", form=LoginForm(next=form.next.data)), 401
    _start_session(identity)
    return redirect(_safe_next(form.next.data))


@bp.route("/demo", methods=["GET", "POST"])
def demo_login():
    """Demo mode only: sign in as one of the local people, no password."""
    settings = settings_of(current_app)
    if not settings.IOI_DEMO:
        abort(404)
    form = ActionForm()
    if request.method == "POST" and form.validate_on_submit():
        identity = login.demo_identity(request.form.get("person_id", ""))
        if identity is None:
            abort(404)
        _start_session(identity)
        return redirect(url_for("orcid.index"))
    return render_template("orcid/demo_login.html", people=login.demo_people(), form=form)


@bp.post("/logout")
def logout():
    """End the session (POST with the CSRF token)."""
    if not ActionForm().validate_on_submit():
        abort(400)
    log_out()
    if settings_of(current_app).IOI_AUTH == "header":
        return render_template("orcid/signed_out.html")
    flash("You have signed out.", "info")
    return redirect(url_for("orcid.index"))


@bp.post("/connect")
@login_required
def connect_start():
    """Send the researcher to ORCID with the chosen permissions."""
    settings = settings_of(current_app)
    identity = current_identity()
    form = PermissionsForm()
    if not form.validate_on_submit():
        abort(400)
    scopes = connect.requested_scopes(settings, form.read_limited.data, form.activities_update.data)
    state = connect.new_state()
    session[STATE_KEY] = state
    known = connect.known_orcid(identity.person_id)
    return redirect(connect.authorize_url(settings, scopes, state, identity, known[0] if known else None))


def _callback():
    """ORCID's redirect back with `code` or `error`, and the `state` of this session."""
    settings = settings_of(current_app)
    identity = current_identity()
    expected = session.pop(STATE_KEY, None)
    if identity is None or not connect.states_match(expected, request.args.get("state")):
        flash(INVALID_STATE, "error")
        return redirect(url_for("orcid.index"))
    error = request.args.get("error")
    if error == "access_denied":
        return render_template("orcid/denied.html", form=PermissionsForm(read_limited=True, activities_update=True))
    if error or not request.args.get("code"):
        flash(f"ORCID did not grant the permission ({request.args.get('error_description') or error}).", "error")
        return redirect(url_for("orcid.index"))
    client = make_client(settings, PROCESS)
    try:
        connected = connect.complete(settings, client, identity, request.args["code"], local_now())
        db.session.commit()
    except connect.ConnectError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("orcid.index"))
    finally:
        client.close()  # after the commit: it writes the call log, which SQLite cannot do inside our transaction
    connect.notify(settings, identity, connected)
    flash("Thank you: your ORCID iD is connected.", "success")
    link = connect.Connection(connected.orcid, connected.token)
    return redirect(url_for("orcid.review_page" if link.may_review(settings.ORCID_MEMBER) else "orcid.index"))


@bp.post("/disconnect")
@login_required
def disconnect():
    """Revoke and retire the permissions granted to the institution."""
    settings = settings_of(current_app)
    if not ActionForm().validate_on_submit():
        abort(400)
    known = connect.known_orcid(current_identity().person_id)
    if known:
        client = make_client(settings, PROCESS)
        try:
            connect.disconnect(settings, client, known[0], local_now())
            db.session.commit()
        finally:
            client.close()
    flash("Your ORCID record is disconnected: we no longer have permission to read or update it.", "info")
    return redirect(url_for("orcid.index"))


@bp.route("/review", methods=["GET", "POST"])
@login_required
def review_page():
    """The list of works and affiliations to choose from, and its submission."""
    settings = settings_of(current_app)
    identity = current_identity()
    now = local_now()
    link = connect.connection(settings, identity.person_id, now)
    if not link.may_review(settings.ORCID_MEMBER):
        flash("Please connect your ORCID record and allow updates first.", "info")
        return redirect(url_for("orcid.index"))
    listing = review.build_review(identity.person_id, identity.name, link.orcid, settings.ORCID_MEMBER)
    form = ActionForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        recorded = review.record_review(listing, request.form.getlist("item"), now)
        db.session.commit()  # the choices are kept whatever ORCID does next
        client = make_client(settings, PROCESS) if settings.ORCID_MEMBER else None
        try:
            outcome = review.push(settings, client, listing, recorded, link.token, now)
            db.session.commit()
        finally:
            if client is not None:
                client.close()
        failed = outcome.failed_ids
        if failed:
            listing = review.build_review(identity.person_id, identity.name, link.orcid, True, failed=failed)
        return render_template("orcid/submitted.html", outcome=outcome, listing=listing)
    return render_template("orcid/review.html", listing=listing, form=form, link=link)


def _start_session(identity: Identity) -> Identity:
    log_in(identity)
    create_person_from_identity(identity, local_now())
    db.session.commit()
    return identity


def _safe_next(value: str | None) -> str:
    """A local path to go to after sign-in; anything else (other hosts, schemes, `//`) goes to the page."""
    default = url_for("orcid.index")
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in value):
        return default
    return value
