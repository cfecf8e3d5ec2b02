"""ORCID iD rules: ISO/IEC 7064 MOD 11-2 check digit, validation, normal form."""

from __future__ import annotations

import re

ORCID_PATTERN = re.compile(r"^(\d{4})-?(\d{4})-?(\d{4})-?(\d{3}[\dX])$")
URL_PREFIX = re.compile(r"^https?://([a-z]+\.)?orcid\.org/", re.IGNORECASE)


def check_digit(first_15_digits: str) -> str:
    """The check character for the first 15 digits of an iD ('0'-'9' or 'X')."""
    total = 0
    for digit in first_15_digits:
        total = (total + int(digit)) * 2
    result = (12 - total % 11) % 11
    return "X" if result == 10 else str(result)


def normalize_orcid(value: str) -> str | None:
    """The bare `0000-0000-0000-000X` form of an iD given bare, compact or as an orcid.org URL;
    None when it is not a valid iD (wrong shape or wrong check digit)."""
    text = URL_PREFIX.sub("", (value or "").strip()).upper()
    match = ORCID_PATTERN.match(text)
    if not match:
        return None
    digits = "".join(match.groups())
    if check_digit(digits[:15]) != digits[15]:
        return None
    return "-".join(match.groups())


def is_valid_orcid(value: str) -> bool:
    """True for a bare, correctly check-summed iD such as 0000-0002-1825-0097."""
    return bool(value) and normalize_orcid(value) == value


def make_orcid(number: int) -> str:
    """A valid iD from a 15-digit number (for simulators and test data)."""
    digits = f"{number:015d}"[-15:]
    full = digits + check_digit(digits)
    return "-".join(full[i : i + 4] for i in range(0, 16, 4))
