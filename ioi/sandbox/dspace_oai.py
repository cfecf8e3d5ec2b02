"""OAI-PMH 2.0 as DSpace 5/6 (XOAI) answers it: verbs, errors, DSpace resumption tokens, xoai/oai_dc records."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from xml.sax.saxutils import escape, quoteattr

from ioi.sandbox.dspace_model import Item, java_timestamp, utc_seconds

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
FORMATS = {
    "xoai": ("http://www.lyncode.com/xsd/xoai.xsd", "http://www.lyncode.com/xoai"),
    "oai_dc": ("http://www.openarchives.org/OAI/2.0/oai_dc.xsd", "http://www.openarchives.org/OAI/2.0/oai_dc/"),
}
VERBS = ("Identify", "ListMetadataFormats", "ListSets", "ListIdentifiers", "ListRecords", "GetRecord")
DC_ELEMENTS = set("title creator subject description publisher contributor date type format identifier".split())
DC_ELEMENTS |= set("source language relation coverage rights".split())
_FULL_DATE = re.compile(r"(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)Z")
_DAY = re.compile(r"(\d+)-(\d+)-(\d+)")


@dataclass(frozen=True)
class OaiSettings:
    """What the data provider says about itself."""

    host: str
    page_size: int
    repository_name: str
    admin_email: str
    zone: tzinfo


class OaiError(Exception):
    """An OAI-PMH error; `echo` says whether the <request> element repeats the arguments."""

    def __init__(self, code: str, message: str, echo: bool = True):
        super().__init__(message)
        self.code = code
        self.message = message
        self.echo = echo


def respond(
    args: Mapping[str, str],
    items: Sequence[Item],
    settings: OaiSettings,
    base_url: str,
    now: datetime,
) -> str:
    """The whole OAI-PMH XML answer to one request; `items` includes withdrawn and expunged ones."""
    attrs: dict[str, str] = {}
    try:
        verb = args.get("verb", "")
        if verb not in VERBS:
            raise OaiError("badVerb", "Illegal verb", echo=False)
        params = _parse(verb, args)
        if params.get("resumptionToken"):
            attrs = {"verb": verb, "resumptionToken": params["resumptionToken"]}
        else:
            attrs = {"verb": verb, **{k: v for k, v in params.items() if v is not None and k != "offset"}}
        records = sorted(items, key=lambda item: item.id)
        body = _HANDLERS[verb](params, records, settings, base_url)
    except OaiError as error:
        if not error.echo:
            attrs = {}
        body = f"<error code={quoteattr(error.code)}>{escape(error.message)}</error>"
    request_attrs = "".join(f" {name}={quoteattr(value)}" for name, value in attrs.items())
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        "<?xml-stylesheet href='static/style.xsl' type='text/xsl'?>"
        f'<OAI-PMH xmlns="{OAI_NS}" xmlns:xsi="{XSI_NS}" '
        f'xsi:schemaLocation="{OAI_NS} http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd">'
        f"<responseDate>{utc_seconds(now)}</responseDate>"
        f"<request{request_attrs}>{escape(base_url)}</request>{body}</OAI-PMH>"
    )


def parse_date(text: str, name: str) -> datetime:
    """XOAI's lenient parse: `yyyy-MM-ddTHH:mm:ssZ`, else the day `yyyy-MM-dd`; trailing text is ignored."""
    try:
        if match := _FULL_DATE.match(text):
            return datetime(*(int(part) for part in match.groups()), tzinfo=UTC)
        if match := _DAY.match(text):
            return datetime(*(int(part) for part in match.groups()), tzinfo=UTC)
    except ValueError:
        pass
    raise OaiError("badArgument", f"The {name} parameter given is not valid", echo=False)


def _parse(verb: str, args: Mapping[str, str]) -> dict[str, str | None]:
    """Check and normalise the arguments of a verb (errors here leave <request> bare)."""
    get = args.get
    if verb in ("ListIdentifiers", "ListRecords"):
        token = get("resumptionToken")
        if token is not None:
            if any(get(name) is not None for name in ("metadataPrefix", "from", "until", "set")):
                raise OaiError("badArgument", "ResumptionToken must be the only argument", echo=False)
            parts = token.split("/")
            if len(parts) != 5 or not parts[4].isdigit():
                raise OaiError("badResumptionToken", "The resumption token is invalid", echo=False)
            prefix, start, until, set_spec, offset = parts
            params = {"metadataPrefix": prefix or None, "from": start or None, "until": until or None}
            params |= {"set": set_spec or None, "offset": offset, "resumptionToken": token}
        else:
            if not get("metadataPrefix"):
                raise OaiError("badArgument", "Missing required argument - metadataPrefix", echo=False)
            params = {name: get(name) for name in ("metadataPrefix", "from", "until", "set")}
            params["offset"] = "0"
        if params["from"] and params["until"] and len(params["from"]) != len(params["until"]):
            raise OaiError("badArgument", "The from and until parameters have different granularities", False)
        for name in ("from", "until"):
            if params[name]:
                params[name] = utc_seconds(parse_date(params[name], name))
        return params
    if verb == "GetRecord":
        if not get("identifier") or not get("metadataPrefix"):
            raise OaiError("badArgument", "Missing required argument - identifier or metadataPrefix", echo=False)
        return {"metadataPrefix": get("metadataPrefix"), "identifier": get("identifier")}
    if verb == "ListMetadataFormats":
        return {"identifier": get("identifier")}
    return {}


def _identifier(settings: OaiSettings, item: Item) -> str:
    return f"oai:{settings.host}:{item.handle}"


def _is_deleted(item: Item) -> bool:
    return item.withdrawn or item.deleted


def _header(settings: OaiSettings, item: Item) -> str:
    status = ' status="deleted"' if _is_deleted(item) else ""
    specs = "".join(f"<setSpec>{spec}</setSpec>" for spec in item.set_specs)
    return (
        f"<header{status}><identifier>{escape(_identifier(settings, item))}</identifier>"
        f"<datestamp>{utc_seconds(item.last_modified)}</datestamp>{specs}</header>"
    )


def _find(identifier: str | None, items: Sequence[Item]) -> Item:
    """The item an `oai:<anything>:<handle>` identifier names (the prefix is not checked)."""
    parts = (identifier or "").split(":", 2)
    if len(parts) == 3 and all(parts):
        for item in items:
            if item.handle == parts[2]:
                return item
    raise OaiError("idDoesNotExist", "The given id does not exist")


def _check_format(prefix: str | None) -> str:
    if prefix not in FORMATS:
        raise OaiError("cannotDisseminateFormat", "Unknown metadata format")
    return prefix


def _list(params, items, settings, base_url, with_records: bool) -> str:
    prefix = _check_format(params["metadataPrefix"])
    start = parse_date(params["from"], "from") if params["from"] else None
    until = parse_date(params["until"], "until") if params["until"] else None
    matches = [
        item
        for item in items
        if (start is None or item.last_modified.replace(microsecond=0) >= start)
        and (until is None or item.last_modified.replace(microsecond=0) <= until)
        and (not params["set"] or params["set"] in item.set_specs)
    ]
    offset, size = int(params["offset"]), settings.page_size
    page = matches[offset : offset + size]
    if not page:
        raise OaiError("noRecordsMatch", "No matches for the query")
    if with_records:
        entries = "".join(_record(item, prefix, settings) for item in page)
    else:
        entries = "".join(_header(settings, item) for item in page)
    total, cursor = len(matches), offset // size
    if offset + size < total:
        value = "/".join([prefix, params["from"] or "", params["until"] or "", params["set"] or "", str(offset + size)])
        entries += f'<resumptionToken completeListSize="{total}" cursor="{cursor}">{escape(value)}</resumptionToken>'
    elif params.get("resumptionToken"):
        entries += f'<resumptionToken completeListSize="{total}" cursor="{cursor}"/>'
    verb = "ListRecords" if with_records else "ListIdentifiers"
    return f"<{verb}>{entries}</{verb}>"


def _list_identifiers(params, items, settings, base_url) -> str:
    return _list(params, items, settings, base_url, with_records=False)


def _list_records(params, items, settings, base_url) -> str:
    return _list(params, items, settings, base_url, with_records=True)


def _get_record(params, items, settings, base_url) -> str:
    prefix = _check_format(params["metadataPrefix"])
    item = _find(params["identifier"], items)
    return f"<GetRecord>{_record(item, prefix, settings)}</GetRecord>"


def _identify(params, items, settings, base_url) -> str:
    earliest = min((item.last_modified for item in items), default=datetime(1970, 1, 1, tzinfo=UTC))
    return (
        f"<Identify><repositoryName>{escape(settings.repository_name)}</repositoryName>"
        f"<baseURL>{escape(base_url)}</baseURL><protocolVersion>2.0</protocolVersion>"
        f"<adminEmail>{escape(settings.admin_email)}</adminEmail>"
        f"<earliestDatestamp>{utc_seconds(earliest)}</earliestDatestamp>"
        "<deletedRecord>transient</deletedRecord><granularity>YYYY-MM-DDThh:mm:ssZ</granularity>"
        "<compression>gzip</compression><compression>deflate</compression></Identify>"
    )


def _list_metadata_formats(params, items, settings, base_url) -> str:
    if params["identifier"]:
        _find(params["identifier"], items)
    formats = "".join(
        f"<metadataFormat><metadataPrefix>{prefix}</metadataPrefix><schema>{schema}</schema>"
        f"<metadataNamespace>{namespace}</metadataNamespace></metadataFormat>"
        for prefix, (schema, namespace) in FORMATS.items()
    )
    return f"<ListMetadataFormats>{formats}</ListMetadataFormats>"


def _list_sets(params, items, settings, base_url) -> str:
    specs = sorted({spec for item in items for spec in item.set_specs})
    sets = "".join(f"<set><setSpec>{spec}</setSpec><setName>{spec}</setName></set>" for spec in specs)
    return f"<ListSets>{sets}</ListSets>"


_HANDLERS = {
    "Identify": _identify,
    "ListMetadataFormats": _list_metadata_formats,
    "ListSets": _list_sets,
    "ListIdentifiers": _list_identifiers,
    "ListRecords": _list_records,
    "GetRecord": _get_record,
}


def _record(item: Item, prefix: str, settings: OaiSettings) -> str:
    """A <record>: a deleted one is just its header."""
    if _is_deleted(item):
        return f"<record>{_header(settings, item)}</record>"
    document = xoai_document(item, settings) if prefix == "xoai" else oai_dc_document(item)
    return f"<record>{_header(settings, item)}<metadata>{document}</metadata></record>"


def xoai_document(item: Item, settings: OaiSettings) -> str:
    """DSpace's internal XOAI document of an item (what `metadataPrefix=xoai` returns)."""
    tree: dict = {}
    for value in item.metadata:
        node = tree
        for part in [*value.key.split("."), value.language or "none"]:
            node = node.setdefault(part, {})
        node.setdefault("", []).append(value)
    handle_path = item.handle
    bitstream_url = f"https://{settings.host}/bitstream/{handle_path}/1/{handle_path.replace('/', '_')}.pdf"
    others = (
        f'<element name="others"><field name="handle">{escape(item.handle)}</field>'
        f'<field name="identifier">{escape(_identifier(settings, item))}</field>'
        f'<field name="lastModifyDate">{java_timestamp(item.last_modified, settings.zone)}</field></element>'
    )
    bundles = (
        '<element name="bundles"><element name="bundle"><field name="name">ORIGINAL</field>'
        '<element name="bitstreams"><element name="bitstream">'
        f'<field name="name">{handle_path.replace("/", "_")}.pdf</field>'
        '<field name="format">application/pdf</field><field name="size">524288</field>'
        f'<field name="url">{escape(bitstream_url)}</field>'
        '<field name="checksumAlgorithm">MD5</field><field name="sid">1</field>'
        "</element></element></element></element>"
    )
    repository = (
        f'<element name="repository"><field name="name">{escape(settings.repository_name)}</field>'
        f'<field name="mail">{escape(settings.admin_email)}</field></element>'
    )
    return (
        f'<metadata xmlns="http://www.lyncode.com/xoai" xmlns:xsi="{XSI_NS}" '
        'xsi:schemaLocation="http://www.lyncode.com/xoai http://www.lyncode.com/xsd/xoai.xsd">'
        f"{_elements(tree)}{bundles}{others}{repository}</metadata>"
    )


def _elements(tree: dict) -> str:
    parts = []
    for name, child in tree.items():
        if name == "":
            for value in child:
                parts.append(f'<field name="value">{escape(value.value)}</field>')
                if value.authority:
                    parts.append(f'<field name="authority">{escape(value.authority)}</field>')
                    parts.append(f'<field name="confidence">{value.confidence}</field>')
        else:
            parts.append(f"<element name={quoteattr(name)}>{_elements(child)}</element>")
    return "".join(parts)


def oai_dc_document(item: Item) -> str:
    """Simple Dublin Core: authors are dc:creator, other contributors dc:contributor."""
    parts = []
    for value in item.metadata:
        schema, element, *_ = value.key.split(".")
        if schema != "dc" or element not in DC_ELEMENTS or value.key == "dc.description.provenance":
            continue
        name = "creator" if value.key == "dc.contributor.author" else element
        parts.append(f"<dc:{name}>{escape(value.value)}</dc:{name}>")
    return (
        '<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" '
        f'xmlns:xsi="{XSI_NS}" xsi:schemaLocation="http://www.openarchives.org/OAI/2.0/oai_dc/ '
        f'http://www.openarchives.org/OAI/2.0/oai_dc.xsd">{"".join(parts)}</oai_dc:dc>'
    )
