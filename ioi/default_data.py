"""Rows a new IOI database starts with: people groups, DSpace→ORCID mappings, invitation emails.

The same rows are in `ioi.sql`; a test keeps the two in step.
"""

GROUPS = [
    {"groupID": 1, "label": "Students", "titles": "MS Student||PhD Student||MS/PhD Student",
     "titleParts": "", "titlePartsToIgnore": ""},
    {"groupID": 2, "label": "Faculty", "titles": "", "titleParts": "prof ||prof.||professor",
     "titlePartsToIgnore": "Professor Emeritus||Courtesy Professor"},
    {"groupID": 3, "label": "Postdocs", "titles": "Post-Doctoral Fellow||Postdoctoral Fellow",
     "titleParts": "", "titlePartsToIgnore": ""},
]  # fmt: skip

# (mappingID, sourceField, entryType, place, orcidField); source is always "dspace".
_MAPPINGS = [
    (1, "dc.title", "work", 1, "title"),
    (2, "dc.identifier.journal", "work", 2, "journal-title"),
    (3, "dc.type", "work", 3, "type"),
    (4, "dc.date.issued", "work", 4, "publication-date"),
    (5, "dc.identifier.doi", "work", 5, "external-ids.doi"),
    (6, "dc.identifier.uri", "work", 6, "external-ids.handle"),
    (7, "dc.identifier.uri", "work", 9, "url"),
    (9, "dc.identifier.pmid", "work", 7, "external-ids.pmid"),
    (10, "dc.identifier.arxivid", "work", 8, "external-ids.arxiv"),
    (11, "Article", "workType", None, "journal-article"),
    (12, "Book", "workType", None, "book"),
    (13, "Book Chapter", "workType", None, "book-chapter"),
    (14, "Conference Paper", "workType", None, "conference-paper"),
    (15, "Dataset", "workType", None, "data-set"),
    (16, "Technical Report", "workType", None, "report"),
    (17, "Poster", "workType", None, "conference-poster"),
    (18, "Dissertation", "workType", None, "dissertation-thesis"),
    (19, "Thesis", "workType", None, "supervised-student-publication"),
    (20, "Patent", "workType", None, "patent"),
    (21, "Presentation", "workType", None, "lecture-speech"),
    (22, "Preprint", "workType", None, "preprint"),
    (23, "Software", "workType", None, "software"),
]
MAPPINGS = [
    {"mappingID": i, "source": "dspace", "sourceField": f, "entryType": t, "place": p, "orcidField": o}
    for i, f, t, p, o in _MAPPINGS
]

_LINK = '<a href="{{OAUTH_REDIRECT_URI}}">ORCID at {{INSTITUTION_ABBREVIATION}}</a>'
_CLOSING = (
    '<p>Questions? Our <a href="{{LOCAL_LIBGUIDE_URL}}">ORCID guide</a> and '
    '<a href="{{LOCAL_TRAINING_URL}}">training sessions</a> can help, or simply reply to this message.</p>\n'
    "<p>Best regards,<br>{{sender}}<br>for the {{INSTITUTION_ABBREVIATION}} Library</p>\n"
)
_WHY = (
    '<p>An <a href="{{ORCID_LINK_BASE_URL}}">ORCID iD</a> is a free, persistent identifier that keeps your '
    "work attributed to you, whatever your name's spelling and wherever you move. Once you connect it, "
    "{{INSTITUTION_ABBREVIATION}} can keep your ORCID record up to date with your affiliation and the "
    "publications you choose from our repository.</p>\n"
)


def _html(*paragraphs: str) -> str:
    return "<html>\n<body>\n<p>Dear {{givenName}},</p>\n" + "".join(paragraphs) + "</body>\n</html>"


EMAIL_TEMPLATES = [
    {"templateID": 1, "label": "membership", "template": _html(
        "<p>{{INSTITUTION_ABBREVIATION}} is now an institutional member of ORCID.</p>\n", _WHY,
        f"<p>To create your iD, or tell us the one you already have, please use {_LINK}.</p>\n", _CLOSING)},
    {"templateID": 2, "label": "initial", "template": _html(
        _WHY,
        f"<p>It takes two minutes: sign in to {_LINK} with your campus account, then create or "
        "identify your ORCID iD and choose what we may add to your record.</p>\n", _CLOSING)},
    {"templateID": 3, "label": "followup", "template": _html(
        "<p>A short reminder: we have not yet seen an ORCID iD connected to your "
        "{{INSTITUTION_ABBREVIATION}} account.</p>\n", _WHY,
        f"<p>Please sign in to {_LINK} to create or identify your iD.</p>\n", _CLOSING)},
    {"templateID": 4, "label": "noPermissions", "template": _html(
        "<p>Thank you for connecting your ORCID iD "
        "<a href=\"{{ORCID_LINK_BASE_URL}}{{ORCID}}\">{{ORCID}}</a> to {{INSTITUTION_ABBREVIATION}}.</p>\n",
        "<p>We cannot yet update your ORCID record for you: {{INSTITUTION_ABBREVIATION}} has no current "
        "permission to do so. If you would like your affiliation and repository publications to appear "
        f"on your record, please sign in to {_LINK} and grant permission.</p>\n", _CLOSING)},
]  # fmt: skip
