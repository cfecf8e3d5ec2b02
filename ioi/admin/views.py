from flask import abort

from ioi.admin import bp


@bp.before_request
def admins_only():
    # Nobody is an admin until campus login exists; refuse everything rather than open the area.
    abort(403)


@bp.get("", strict_slashes=False)
def index():
    abort(403)
