import pytest
from sqlalchemy import make_url

from ioi import create_app, settings_of
from ioi.config import ConfigError, load_settings

BASE = {"SECRET_KEY": "a-sufficiently-long-secret"}


def settings(**values):
    return load_settings({**BASE, **values}, env_file=None)


def test_bad_boolean_stops_startup_naming_the_setting():
    with pytest.raises(ConfigError, match="ORCID_MEMBER"):
        settings(ORCID_MEMBER="maybe")


def test_malformed_url_stops_startup_naming_the_setting():
    with pytest.raises(ConfigError, match="OAUTH_TOKEN_URL"):
        settings(OAUTH_TOKEN_URL="not a url")


def test_secret_key_is_required_outside_the_demo():
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_settings({}, env_file=None)
    assert load_settings({"IOI_DEMO": "true"}, env_file=None).SECRET_KEY is None


@pytest.mark.parametrize(
    "name,value",
    [
        ("INSTITUTION_COUNTRY", "Saudi Arabia"),
        ("EMAIL_REPORT_LEVEL", "everything"),
        ("DSPACE_VERSION", "4"),
        ("IR_EMAIL", "not-an-address"),
        ("REPOSITORY_BASE_URL", "https://repo.example.edu/"),
        ("INSTITUTION_ROR_ID", "05qwgg493"),
        ("LOCAL_COLORS", "#123456 red"),
        ("SMTP_PORT", "70000"),
        ("IOI_AUTH", "kerberos"),
        ("LDAP_BIND_DN_TEMPLATE", "uid=admin,dc=example,dc=edu"),
        ("EMAIL_SEND_DELAY", "-1"),
        ("ORCID_MAX_RPS", "30"),
        ("ORCID_BURST", "100"),
        ("TOKEN_ENCRYPTION_KEY", "not-a-key"),
        ("QUERY_ALLOWED_IPS", "10.0.0.0/8 intranet"),
        ("QUERY_ID_PATTERN", "(unclosed"),
        ("QUERY_CACHE_MB", "-5"),
        ("QUERY_CACHE_MB", "lots"),
        ("QUERY_CACHE_SECONDS", "0"),
    ],
)
def test_each_bad_value_is_named(name, value):
    with pytest.raises(ConfigError, match=name):
        settings(**{name: value})


def test_sandbox_endpoints_follow_orcid_production():
    sandbox = settings(ORCID_PRODUCTION="false")
    production = settings(ORCID_PRODUCTION="true")
    assert sandbox.OAUTH_TOKEN_URL == "https://sandbox.orcid.org/oauth/token"
    assert sandbox.ORCID_API_URL == "https://api.sandbox.orcid.org/v3.0/"
    assert production.OAUTH_REVOKE_URL == "https://orcid.org/oauth/revoke"
    assert production.PUBLIC_API_URL == "https://pub.orcid.org/v3.0/"
    assert production.ORCID_LINK_BASE_URL == "https://orcid.org/"


def test_each_endpoint_can_be_overridden():
    s = settings(ORCID_API_URL="http://127.0.0.1:9000/v3.0/", REPOSITORY_OAI_URL="http://127.0.0.1:9001/oai/request")
    assert s.ORCID_API_URL == "http://127.0.0.1:9000/v3.0/"
    assert s.OAUTH_TOKEN_URL == "https://sandbox.orcid.org/oauth/token"
    assert s.REPOSITORY_OAI_URL == "http://127.0.0.1:9001/oai/request"


def test_repository_urls_derive_from_base_url_and_version():
    s = settings(REPOSITORY_BASE_URL="repository.kaust.edu.sa", DSPACE_VERSION="6")
    assert s.REPOSITORY_URL == "https://repository.kaust.edu.sa"
    assert s.REPOSITORY_API_URL == "https://repository.kaust.edu.sa/rest/"
    assert s.REPOSITORY_OAI_URL == "https://repository.kaust.edu.sa/oai/request"
    assert s.REPOSITORY_OAI_ID_PREFIX == "oai:repository.kaust.edu.sa:"
    assert settings(DSPACE_VERSION="7").REPOSITORY_API_URL.endswith("/server/api/")


def test_database_url_from_legacy_mysql_settings(tmp_path):
    url = make_url(settings(MYSQL_USER="ioi", MYSQL_PW="p@ss/word").database_url(tmp_path))
    assert (url.drivername, url.username, url.password, url.host, url.database) == (
        "mysql+pymysql",
        "ioi",
        "p@ss/word",
        "localhost",
        "ioi",
    )
    assert url.query["charset"] == "utf8mb4"
    assert settings().database_url(tmp_path) == f"sqlite:///{tmp_path / 'ioi.sqlite'}"
    assert settings(DATABASE_URL="sqlite:///x.db", MYSQL_USER="ioi").database_url(tmp_path) == "sqlite:///x.db"


def test_settings_come_from_the_environment_and_a_dotenv_file(monkeypatch, tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("INSTITUTION_ABBREVIATION=KAUST\nORCID_MEMBER=false\n")
    monkeypatch.setenv("INSTITUTION_NAME", "King Abdullah University")
    s = load_settings(BASE, env_file=env_file)
    assert (s.INSTITUTION_ABBREVIATION, s.ORCID_MEMBER, s.INSTITUTION_NAME) == (
        "KAUST",
        False,
        "King Abdullah University",
    )


def test_list_settings_split_on_spaces():
    s = settings(LDAP_HOSTNAME_SSL="ldap1.example.edu ldap2.example.edu")
    assert s.ldap_hosts == ["ldap1.example.edu", "ldap2.example.edu"]
    assert "dc.contributor.advisor" in s.orcid_enabled_fields


def test_create_app_registers_the_three_blueprints_without_touching_the_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'never.sqlite'}"
    app = create_app({**BASE, "DATABASE_URL": url})
    assert {"orcid", "admin", "query"} <= set(app.blueprints)
    assert not (tmp_path / "never.sqlite").exists()
    assert settings_of(app).DATABASE_URL == url
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    assert {"/orcid", "/admin", "/query"} <= rules


def test_pages_carry_security_headers(client):
    response = client.get("/orcid")
    assert response.status_code == 200
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert client.get("/images/logo.svg").status_code == 200


def test_example_env_documents_every_setting_and_loads(tmp_path):
    from dotenv import dotenv_values

    from ioi.config import PROJECT_ROOT, Settings

    example = PROJECT_ROOT / "constants.example.env"
    values = dotenv_values(example)
    assert set(Settings.model_fields) - {"IOI_DEMO"} <= set(values)
    env_file = tmp_path / ".env"
    env_file.write_text(example.read_text().replace("SECRET_KEY=  ", "SECRET_KEY=an-example-secret-of-length"))
    loaded = load_settings({}, env_file=env_file)
    assert loaded.chart_colours[:2] == ["#2f6f9f", "#a6ce39"]
    assert loaded.ldap_hosts == ["ldaps://ldap1.example.edu", "ldaps://ldap2.example.edu"]
    assert loaded.OAUTH_TOKEN_URL == "https://sandbox.orcid.org/oauth/token"


def test_legacy_php_paths_still_answer(client):
    assert client.get("/orcid.php").data == client.get("/orcid").data
    assert client.get("/admin.php").status_code == client.get("/admin").status_code
    assert client.get("/query.php").status_code == client.get("/query").status_code


def test_query_and_token_settings_are_parsed():
    from cryptography.fernet import Fernet

    s = settings(QUERY_API_KEYS="k1, k2", QUERY_ALLOWED_IPS="10.0.0.0/8 127.0.0.1")
    assert s.query_api_keys == ["k1", "k2"]
    assert [str(n) for n in s.query_allowed_networks] == ["10.0.0.0/8", "127.0.0.1/32"]
    Fernet(s.token_key)  # derived from SECRET_KEY when not set
    key = Fernet.generate_key().decode()
    assert settings(TOKEN_ENCRYPTION_KEY=key).token_key == key.encode()
    assert settings(SECRET_KEY="another-long-secret-key").token_key != s.token_key


def test_ioi_env_file_names_another_settings_file(monkeypatch, tmp_path):
    env_file = tmp_path / "site.env"
    env_file.write_text("SECRET_KEY=from-the-named-file-123\nINSTITUTION_ABBREVIATION=SITE\n")
    monkeypatch.setenv("IOI_ENV_FILE", str(env_file))
    assert load_settings().INSTITUTION_ABBREVIATION == "SITE"


def test_behind_a_proxy_the_client_address_comes_from_x_forwarded_for(tmp_path):
    from flask import request

    for count, expected in ((0, "127.0.0.1"), (1, "203.0.113.9")):
        app = create_app({**BASE, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite'}", "IOI_PROXY_COUNT": count})
        app.add_url_rule("/whoami", "whoami", lambda: request.remote_addr)
        response = app.test_client().get("/whoami", headers={"X-Forwarded-For": "203.0.113.9"})
        assert response.text == expected
