"""Forms of the researcher page; Flask-WTF adds and checks the CSRF token of each."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    """Campus username and password (IOI_AUTH=ldap)."""

    username = StringField("Campus username", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])
    next = HiddenField()


class PermissionsForm(FlaskForm):
    """What the researcher lets the institution do; creating or identifying the iD is always asked."""

    read_limited = BooleanField("Read information from my ORCID record")
    activities_update = BooleanField("Add my affiliation and repository publications to my ORCID record")


class ActionForm(FlaskForm):
    """Only the CSRF token: sign out, disconnect, the demo list and the review list (whose checked
    items arrive as repeated `item` fields, checked against the listing by the review service)."""
