"""The admin area's forms (CSRF-protected through Flask-WTF)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import HiddenField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, ValidationError

from ioi.orcid_ids import normalize_orcid
from ioi.services.invitations import INVITE_TYPES, TEMPLATE_LABELS
from ioi.services.uploads import KINDS


class AddAdminForm(FlaskForm):
    email = StringField("Email address", validators=[DataRequired()])
    add = SubmitField("Add admin")


class RemoveAdminForm(FlaskForm):
    email = HiddenField(validators=[DataRequired()])
    remove = SubmitField("Remove")


class SendForm(FlaskForm):
    group = HiddenField(validators=[DataRequired()])
    invite_type = HiddenField(validators=[DataRequired()])
    send = SubmitField("Send batch")
    test = SubmitField("Test only")

    def validate_invite_type(self, field) -> None:
        if field.data not in INVITE_TYPES:
            raise ValidationError("Unknown invitation type.")


class TemplateForm(FlaskForm):
    template = TextAreaField("Template (HTML)", validators=[DataRequired()])
    preview = SubmitField("Preview")
    save = SubmitField("Save")


class NameForm(FlaskForm):
    orcid = StringField("ORCID iD", validators=[DataRequired()])
    name = StringField("New name (Surname, Given name)", validators=[DataRequired(), Length(max=200)])
    submit = SubmitField("Update name")

    def validate_orcid(self, field) -> None:
        normal = normalize_orcid(field.data or "")
        if normal is None:
            raise ValidationError("Not a valid ORCID iD (expected 0000-0000-0000-000X with a correct check digit).")
        field.data = normal

    def validate_name(self, field) -> None:
        name = " ".join((field.data or "").split())
        surname, _, given = name.partition(",")
        if not surname.strip() or not given.strip():
            raise ValidationError("Write the name as “Surname, Given name”.")
        field.data = f"{surname.strip()}, {given.strip()}"


class UploadForm(FlaskForm):
    kind = StringField("Kind of file")  # a <select> of KINDS in the template
    file = FileField("CSV file", validators=[FileRequired("Choose a CSV file.")])
    upload = SubmitField("Upload")

    def validate_kind(self, field) -> None:
        if field.data not in KINDS:
            raise ValidationError("Choose what kind of file this is.")


def template_choices() -> list[str]:
    return list(TEMPLATE_LABELS)
