"""Render stored simulator items as ORCID v3.0 XML and JSON (items, summaries, activities)."""

from __future__ import annotations

import copy
import datetime as dt
import re
from dataclasses import dataclass, field

from lxml import etree

from ioi.sandbox.orcid_rules import NS

SOURCE_HOST = "sandbox.orcid.org"
CLIENT_ID = re.compile(r"APP-[\da-zA-Z]{16}")
EMPTY_SECTIONS = (
    "distinctions",
    "fundings",
    "invited-positions",
    "memberships",
    "peer-reviews",
    "qualifications",
    "research-resources",
    "services",
)
LISTS = {"group", "affiliation-group", "external-id", "work-summary", "contributor"}
VALUE_WRAPPED = {
    "title",
    "subtitle",
    "translated-title",
    "journal-title",
    "short-description",
    "year",
    "month",
    "day",
    "url",
    "source-name",
    "credit-name",
    "language-code",
    "external-id-url",
    "created-date",
    "last-modified-date",
}


@dataclass
class Item:
    """One stored activity: the submitted XML, the normalised document, and ORCID's metadata."""

    put_code: int
    orcid: str
    section: str
    client_id: str
    client_name: str
    xml: str
    stored: bytes
    created: dt.datetime
    modified: dt.datetime
    visibility: str = "public"
    keys: set[tuple[str, str]] = field(default_factory=set)

    def document(self) -> etree._Element:
        """A fresh copy of the stored (normalised) document."""
        parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
        return etree.fromstring(self.stored, parser)


def _q(prefix: str, name: str) -> str:
    return f"{{{NS[prefix]}}}{name}"


def stamp(moment: dt.datetime) -> str:
    """An xs:dateTime with milliseconds and a UTC offset (no padding)."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _source(item: Item) -> etree._Element:
    source = etree.Element(_q("common", "source"))
    if CLIENT_ID.fullmatch(item.client_id):
        client = etree.SubElement(source, _q("common", "source-client-id"))
        etree.SubElement(client, _q("common", "uri")).text = f"https://{SOURCE_HOST}/client/{item.client_id}"
        etree.SubElement(client, _q("common", "path")).text = item.client_id
        etree.SubElement(client, _q("common", "host")).text = SOURCE_HOST
    etree.SubElement(source, _q("common", "source-name")).text = item.client_name
    return source


def _metadata(item: Item) -> list[etree._Element]:
    created = etree.Element(_q("common", "created-date"))
    created.text = stamp(item.created)
    modified = etree.Element(_q("common", "last-modified-date"))
    modified.text = stamp(item.modified)
    return [created, modified, _source(item)]


def _decorate(element: etree._Element, item: Item) -> None:
    for name in ("put-code", "path", "visibility", "display-index"):
        element.attrib.pop(name, None)
    element.set("put-code", str(item.put_code))
    element.set("path", f"/{item.orcid}/{item.section}/{item.put_code}")
    element.set("visibility", item.visibility)
    for position, child in enumerate(_metadata(item)):
        element.insert(position, child)


def render_item(item: Item) -> etree._Element:
    """The full stored item as ORCID returns it on GET/PUT."""
    element = item.document()
    for name in ("created-date", "last-modified-date", "source"):
        for old in element.findall(f"common:{name}", NS):
            element.remove(old)
    _decorate(element, item)
    return element


def _work_summary(item: Item) -> etree._Element:
    work = render_item(item)
    summary = etree.Element(_q("work", "work-summary"), attrib=dict(work.attrib))
    summary.set("display-index", "0")
    for child in work[:3]:
        summary.append(copy.deepcopy(child))
    wanted = [
        "work:title",
        "common:external-ids",
        "common:url",
        "work:type",
        "common:publication-date",
        "work:journal-title",
    ]
    for path in wanted:
        found = work.find(path, NS)
        if found is not None:
            summary.append(copy.deepcopy(found))
    return summary


def _affiliation_summary(item: Item) -> etree._Element:
    full = render_item(item)
    full.tag = _q(item.section, f"{item.section}-summary")
    full.set("display-index", "0")
    return full


def _latest(items: list[Item]) -> etree._Element | None:
    if not items:
        return None
    element = etree.Element(_q("common", "last-modified-date"))
    element.text = stamp(max(i.modified for i in items))
    return element


def _group_works(items: list[Item]) -> list[list[Item]]:
    """Group works sharing a `self` external id (ORCID groups the same output from several sources)."""
    groups: list[tuple[set[tuple[str, str]], list[Item]]] = []
    for item in items:
        for keys, members in groups:
            if keys & item.keys:
                keys |= item.keys
                members.append(item)
                break
        else:
            groups.append((set(item.keys), [item]))
    return [members for _, members in groups]


def _group_ids(members: list[Item]) -> etree._Element:
    ids = etree.Element(_q("common", "external-ids"))
    seen: set[tuple[str, str]] = set()
    for item in members:
        for ext in item.document().findall("common:external-ids/common:external-id", NS):
            key = (ext.findtext("common:external-id-type", "", NS), ext.findtext("common:external-id-value", "", NS))
            if ext.findtext("common:external-id-relationship", "", NS) == "self" and key not in seen:
                seen.add(key)
                ids.append(copy.deepcopy(ext))
    return ids


def render_summary(orcid: str, section: str, items: list[Item]) -> etree._Element:
    """`works`, `employments` or `educations` summary of the given items (one section)."""
    tag = section + "s"
    root = etree.Element(_q("activities", tag), nsmap=NS)
    root.set("path", f"/{orcid}/{tag}")
    latest = _latest(items)
    if latest is not None:
        root.append(latest)
    if section == "work":
        for members in _group_works(items):
            group = etree.SubElement(root, _q("activities", "group"))
            group.append(_latest(members))
            group.append(_group_ids(members))
            for item in members:
                group.append(_work_summary(item))
    else:
        for item in items:
            group = etree.SubElement(root, _q("activities", "affiliation-group"))
            group.append(_latest([item]))
            ids = item.document().find("common:external-ids", NS)
            group.append(copy.deepcopy(ids) if ids is not None else etree.Element(_q("common", "external-ids")))
            group.append(_affiliation_summary(item))
    return root


def render_activities(orcid: str, items: list[Item]) -> etree._Element:
    """The activities summary: empty containers for unsupported sections, plus educations, employments, works."""
    root = etree.Element(_q("activities", "activities-summary"), nsmap=NS)
    root.set("path", f"/{orcid}/activities")
    latest = _latest(items)
    if latest is not None:
        root.append(latest)
    order = ["distinctions", "educations", "employments", *EMPTY_SECTIONS[1:], "works"]
    for name in order:
        if name in ("educations", "employments", "works"):
            section = name[:-1]
            root.append(render_summary(orcid, section, [i for i in items if i.section == section]))
        else:
            etree.SubElement(root, _q("activities", name)).set("path", f"/{orcid}/{name}")
    return root


def to_bytes(element: etree._Element) -> bytes:
    """Serialise an element as a standalone UTF-8 XML document."""
    return etree.tostring(element, xml_declaration=True, encoding="UTF-8", standalone=True)


def _local(tag: str) -> str:
    return etree.QName(tag).localname


def _leaf(name: str, text: str) -> object:
    if name in ("created-date", "last-modified-date"):
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        return {"value": int(moment.timestamp() * 1000)}
    return {"value": text} if name in VALUE_WRAPPED else text


def to_json(element: etree._Element) -> object:
    """A JSON-ready rendering in ORCID's style: hyphenated keys, {"value": ...} leaves, numeric put-codes."""
    name = _local(element.tag)
    if name == "bulk":
        return {"bulk": [{_local(child.tag): to_json(child)} for child in element]}
    if len(element) == 0 and not element.attrib:
        return _leaf(name, (element.text or "").strip())
    result: dict[str, object] = {}
    for key, value in element.attrib.items():
        if etree.QName(key).namespace:
            continue
        result[key] = int(value) if key == "put-code" else value
    if len(element) == 0 and (element.text or "").strip():
        result["value"] = element.text.strip()
    for child in element:
        key = _local(child.tag)
        value = to_json(child)
        if name == "affiliation-group" and key.endswith("-summary"):
            result.setdefault("summaries", []).append({key: value})  # type: ignore[union-attr]
        elif key in LISTS:
            result.setdefault(key, []).append(value)  # type: ignore[union-attr]
        else:
            result[key] = value
    if name == "external-ids":
        result.setdefault("external-id", [])
    return result
