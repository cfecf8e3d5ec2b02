"""Admin views: parse the request, call a service, render. Every route is `admin_required`."""

from __future__ import annotations

import importlib
import logging
import threading

from flask import Response, abort, current_app, flash, jsonify, redirect, render_template, request, url_for

from ioi import settings_of
from ioi.admin import bp
from ioi.admin.forms import (
    AddAdminForm,
    NameForm,
    RemoveAdminForm,
    SendForm,
    TemplateForm,
    UploadForm,
)
from ioi.auth import admin_required, current_identity
from ioi.extensions import db
from ioi.mail import MailError
from ioi.services import admins, dashboard, invitations, task_reports, uploads
from ioi.timeutil import now

log = logging.getLogger(__name__)

TABS = [
    ("admin.index", "Dashboard"),
    ("admin.emails", "Send Emails"),
    ("admin.names", "Update Names"),
    ("admin.upload", "Upload Files"),
    ("admin.reports", "Task Reports"),
    ("admin.admins_page", "Admins"),
]


@bp.context_processor
def _tabs() -> dict:
    return {"admin_tabs": TABS}


@bp.errorhandler(413)
def _too_large(error):
    limit = min(current_app.config.get("MAX_CONTENT_LENGTH") or uploads.MAX_UPLOAD_BYTES, uploads.MAX_UPLOAD_BYTES)
    message = f"The file is larger than the {_size(limit)} that can be uploaded. Split it into smaller files."
    page = render_template("admin/upload.html", form=UploadForm(formdata=None), kinds=uploads.KINDS,
                           result=None, file_error=message, max_mb=uploads.MAX_UPLOAD_BYTES // 1048576)  # fmt: skip
    return page, 413


def _size(n: int) -> str:
    return f"{n / 1048576:.0f} MB" if n >= 1048576 else f"{n / 1024:.0f} KB"


def _settings():
    return settings_of(current_app)


def _page_number() -> int:
    return request.args.get("page", 1, type=int) or 1


# --- dashboard --------------------------------------------------------------------------------


@bp.get("", strict_slashes=False)
@admin_required
def index():
    totals, figures = dashboard.build_dashboard(now())
    colours = _settings().chart_colours
    charts = {f.key: {**f.chart_data(), "colours": colours} for f in figures}
    return render_template("admin/dashboard.html", totals=totals, figures=figures, charts=charts)


@bp.get("/dashboard/<key>.csv")
@admin_required
def figure_csv(key: str):
    figure = dashboard.figure_by_key(key, now())
    if figure is None:
        abort(404)
    return Response(
        figure.csv(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="ioi-{figure.key}.csv"'},
    )


# --- invitations ------------------------------------------------------------------------------


@bp.get("/emails")
@admin_required
def emails():
    running = invitations.running_batch()
    return render_template(
        "admin/emails.html",
        rows=invitations.invitation_table(now()),
        types=invitations.INVITE_TYPES,
        how_chosen=invitations.HOW_CHOSEN,
        running=invitations.batch_status(running.batchID) if running else None,
        templates=invitations.TEMPLATE_LABELS,
        delay=_settings().EMAIL_SEND_DELAY,
        form=SendForm(),
    )


@bp.post("/emails/send")
@admin_required
def send_emails():
    form = SendForm()
    if not form.validate_on_submit():
        flash("That request was not understood; nothing was sent.", "error")
        return redirect(url_for("admin.emails"))
    identity = current_identity()
    sender = invitations.first_given_name(identity.name) if identity else ""
    group, invite_type = form.group.data, form.invite_type.data
    settings = _settings()
    if form.test.data:
        try:
            invitee = invitations.send_test(settings, group, invite_type, sender, now())
        except ValueError as exc:
            flash(f"Nothing sent: {exc}.", "error")
        except MailError as exc:
            flash(f"The test email could not be sent: {exc}", "error")
        else:
            flash(f"Test {invite_type} email for {group} sent to {settings.IR_EMAIL} (as for {invitee.name}).")
        return redirect(url_for("admin.emails"))
    try:
        batch, invitees = invitations.start_batch(settings, group, invite_type, identity.email, now())
    except invitations.BatchRunning as exc:
        running = exc.batch
        who = f" ({running.groupLabel} {running.inviteType}, started by {running.sentBy})" if running else ""
        flash(f"Another batch is being sent{who}; wait for it to finish.", "error")
        return redirect(url_for("admin.emails"))
    except ValueError as exc:
        flash(f"Nothing sent: {exc}.", "error")
        return redirect(url_for("admin.emails"))
    worker = threading.Thread(
        target=invitations.run_in_app,
        args=(current_app._get_current_object(), settings, batch.batchID, invitees, sender),
        name=f"ioi-email-batch-{batch.batchID}",
        daemon=True,
    )
    worker.start()
    flash(f"Sending {len(invitees)} {invite_type} emails to {group}; progress is shown below.")
    return redirect(url_for("admin.emails"))


@bp.get("/emails/batches/<int:batch_id>")
@admin_required
def batch_status(batch_id: int):
    status = invitations.batch_status(batch_id)
    if status is None:
        abort(404)
    return jsonify(status)


@bp.route("/emails/templates/<label>", methods=["GET", "POST"])
@admin_required
def email_template(label: str):
    if label not in invitations.TEMPLATE_LABELS:
        abort(404)
    form = TemplateForm()
    if request.method == "GET":
        form.template.data = invitations.get_template(label)
    elif form.validate_on_submit() and form.save.data:
        invitations.save_template(label, form.template.data, now())
        db.session.commit()
        flash(f"Template “{label}” saved; the earlier version is kept in the database.")
        return redirect(url_for("admin.email_template", label=label))
    identity = current_identity()
    sender = invitations.first_given_name(identity.name) if identity else ""
    values = invitations.placeholder_values(_settings(), invitations.SAMPLE["givenName"], sender,
                                            invitations.SAMPLE["ORCID"])  # fmt: skip
    text = form.template.data or ""
    preview = invitations.render(text, values)
    unset = [name for name, value in values.items() if not value and "{{" + name + "}}" in text]
    return render_template(
        "admin/template.html",
        label=label,
        form=form,
        preview=preview,
        unset=unset,
        subject=invitations.subject(_settings(), label),
        placeholders=invitations.PLACEHOLDERS,
    )


# --- names ------------------------------------------------------------------------------------


@bp.route("/names", methods=["GET", "POST"])
@admin_required
def names():
    form = NameForm()
    result = None
    if form.validate_on_submit():
        try:
            service = importlib.import_module("ioi.services.name_fix")
        except ImportError:
            flash("Name fixing is not available on this installation yet.", "error")
        else:
            try:
                result = service.fix_author_name(_settings(), form.orcid.data, form.name.data)
                db.session.commit()
            except Exception:
                db.session.rollback()
                log.exception("name fix for %s failed", form.orcid.data)
                flash("The name could not be updated: an unexpected error occurred (see the server log).", "error")
    return render_template("admin/names.html", form=form, result=result)


# --- uploads ----------------------------------------------------------------------------------


@bp.route("/upload", methods=["GET", "POST"])
@admin_required
def upload():
    form = UploadForm()
    result, file_error = None, None
    if form.validate_on_submit():
        storage = form.file.data
        data = storage.read(uploads.MAX_UPLOAD_BYTES + 1)
        try:
            result = uploads.import_file(form.kind.data, storage.filename or "upload.csv", data, now())
        except uploads.UploadError as exc:
            file_error = str(exc)
    return render_template(
        "admin/upload.html",
        form=form,
        kinds=uploads.KINDS,
        result=result,
        file_error=file_error,
        max_mb=uploads.MAX_UPLOAD_BYTES // 1048576,
    )


# --- task reports -----------------------------------------------------------------------------


@bp.get("/reports")
@admin_required
def reports():
    process = request.args.get("process") or None
    errors_first = request.args.get("order", "errors") == "errors"
    page = task_reports.list_messages(process, errors_first, _page_number())
    return render_template(
        "admin/reports.html",
        page=page,
        process=process,
        processes=task_reports.processes(),
        errors_first=errors_first,
    )


@bp.get("/reports/<int:message_id>")
@admin_required
def report(message_id: int):
    message = task_reports.get_message(message_id)
    if message is None:
        abort(404)
    return render_template("admin/report.html", message=message)


@bp.get("/orcid-calls")
@admin_required
def orcid_calls():
    process = request.args.get("process") or None
    failed_first = request.args.get("order") == "failed"
    page = task_reports.list_calls(process, failed_first, _page_number())
    return render_template(
        "admin/orcid_calls.html",
        page=page,
        process=process,
        processes=task_reports.call_processes(),
        failed_first=failed_first,
    )


# --- admins -----------------------------------------------------------------------------------


@bp.route("/admins", methods=["GET", "POST"])
@admin_required
def admins_page():
    form = AddAdminForm()
    if form.validate_on_submit():
        try:
            address = admins.add_admin(form.email.data, now())
        except admins.AdminError as exc:
            flash(str(exc), "error")
        else:
            db.session.commit()
            flash(f"{address} is now an admin.")
            return redirect(url_for("admin.admins_page"))
    identity = current_identity()
    return render_template(
        "admin/admins.html",
        form=form,
        remove_form=RemoveAdminForm(),
        admins=admins.list_admins(),
        me=identity.email.lower() if identity else "",
    )


@bp.post("/admins/remove")
@admin_required
def remove_admin():
    form = RemoveAdminForm()
    if form.validate_on_submit():
        identity = current_identity()
        try:
            address = admins.remove_admin(form.email.data, identity.email if identity else "")
        except admins.AdminError as exc:
            flash(str(exc), "error")
        else:
            db.session.commit()
            flash(f"{address} is no longer an admin.")
    else:
        flash("That request was not understood; nothing changed.", "error")
    return redirect(url_for("admin.admins_page"))
