import pytest

from ioi.orcid_ids import check_digit, is_valid_orcid, make_orcid, normalize_orcid


def test_check_digit_matches_orcids_worked_examples():
    assert check_digit("000000021825009") == "7"
    assert check_digit("000000029079593") == "X"


@pytest.mark.parametrize(
    "given,expected",
    [
        ("0000-0002-1825-0097", "0000-0002-1825-0097"),
        ("https://orcid.org/0000-0002-1825-0097", "0000-0002-1825-0097"),
        ("http://sandbox.orcid.org/0000-0002-9079-593x", "0000-0002-9079-593X"),
        ("0000000218250097", "0000-0002-1825-0097"),
        ("0000-0002-1825-0098", None),
        ("0000-0002-1825", None),
        ("", None),
        ("<script>", None),
    ],
)
def test_normalize_orcid(given, expected):
    assert normalize_orcid(given) == expected


def test_is_valid_orcid_requires_the_bare_form():
    assert is_valid_orcid("0000-0002-1825-0097")
    assert not is_valid_orcid("https://orcid.org/0000-0002-1825-0097")


def test_make_orcid_always_yields_valid_ids():
    assert all(is_valid_orcid(make_orcid(n)) for n in range(1000, 1100))
    assert make_orcid(21825009) == "0000-0002-1825-0097"
