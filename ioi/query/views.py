from flask import abort

from ioi.query import bp


@bp.get("", strict_slashes=False)
def index():
    # Closed until API keys exist: the original's endpoint was open to everyone.
    abort(403)
