from flask import render_template

from ioi.orcid import bp


@bp.get("", strict_slashes=False)
def index():
    return render_template("orcid/index.html")
