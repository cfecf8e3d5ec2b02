"""A throwaway OpenLDAP `slapd` for tests: own config, own mdb database, loopback port only.

Needs the Debian/Ubuntu packages `slapd` (slapd, slapadd, back_mdb, schema files) and, for manual
poking only, `ldap-utils`. Entries carry the Active Directory attribute names IOI uses by default
(employeeID, department, whenCreated), declared here with Microsoft's OIDs, so tests can use the
default LDAP_*_ATTRIBUTE settings.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

BASE_DN = "dc=example,dc=edu"
PEOPLE_DN = f"ou=people,{BASE_DN}"
ROOT_DN = f"cn=admin,{BASE_DN}"
ROOT_PASSWORD = "root-secret"
SCHEMA_DIRS = (Path("/etc/ldap/schema"), Path("/etc/openldap/schema"))
MODULE_DIRS = (Path("/usr/lib/ldap"), Path("/usr/lib64/openldap"), Path("/usr/lib/openldap"))

# The three Active Directory attributes IOI reads that OpenLDAP's standard schema lacks.
AD_SCHEMA = """\
attributetype ( 1.2.840.113556.1.4.35 NAME 'employeeID'
    EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.2.141 NAME 'department'
    EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.2.2 NAME 'whenCreated'
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.24 SINGLE-VALUE )
"""

# Passwords are stored in clear text: slapd compares them as such, and this is a test directory.
PEOPLE_LDIF = f"""\
dn: {BASE_DN}
objectClass: dcObject
objectClass: organization
dc: example
o: Example University

dn: {PEOPLE_DN}
objectClass: organizationalUnit
ou: people

dn: uid=jdoe,{PEOPLE_DN}
objectClass: inetOrgPerson
objectClass: extensibleObject
uid: jdoe
cn: jdoe
sn: Doe
givenName: Jane
displayName: Jane Q. Doe
mail: Jane.Doe@Example.EDU
employeeID: 900123
title: Associate Professor
department: Physical Sciences
whenCreated: 20150901083000.0Z
userPassword: correct horse

dn: uid=minimal,{PEOPLE_DN}
objectClass: inetOrgPerson
uid: minimal
cn: minimal
sn: Minimal
userPassword: minimal-pass

dn: uid=oddstart,{PEOPLE_DN}
objectClass: inetOrgPerson
objectClass: extensibleObject
uid: oddstart
cn: oddstart
sn: Oddstart
mail: oddstart@example.edu
employeeID: 900456
whenCreated: 19990231000000Z
userPassword: odd-pass
"""

# Who may do what: anyone may try a bind; a bound user may read the directory, never passwords.
ACCESS = """\
access to attrs=userPassword
    by anonymous auth
    by * none
access to *
    by users read
    by * none
"""


def find_slapd() -> tuple[Path, Path, Path, Path] | None:
    """(slapd, slapadd, schema dir, module dir), or None when OpenLDAP's server is not installed."""
    slapd = shutil.which("slapd") or shutil.which("slapd", path="/usr/sbin:/usr/local/sbin:/usr/libexec")
    slapadd = shutil.which("slapadd") or shutil.which("slapadd", path="/usr/sbin:/usr/local/sbin")
    schema = next((d for d in SCHEMA_DIRS if (d / "inetorgperson.schema").exists()), None)
    modules = next((d for d in MODULE_DIRS if d.is_dir()), None)
    if not (slapd and slapadd and schema and modules):
        return None
    return Path(slapd), Path(slapadd), schema, modules


def free_port() -> int:
    """A loopback TCP port nothing listens on (at the time of asking)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SlapdUnavailable(RuntimeError):
    """slapd is not installed or would not start; tests should skip."""


@dataclass
class Slapd:
    """A running slapd; `url` is ldap://127.0.0.1:PORT."""

    process: subprocess.Popen
    port: int
    directory: Path

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_slapd(directory: Path, ldif: str = PEOPLE_LDIF, timeout: float = 10.0) -> Slapd:
    """Write a config into `directory`, load `ldif` with slapadd, start slapd. Raises SlapdUnavailable."""
    found = find_slapd()
    if found is None:
        raise SlapdUnavailable("OpenLDAP slapd/slapadd not installed (apt-get install slapd ldap-utils)")
    slapd, slapadd, schema, modules = found
    data = directory / "data"
    data.mkdir(parents=True, exist_ok=True)
    (directory / "ad.schema").write_text(AD_SCHEMA)
    (directory / "people.ldif").write_text(ldif)
    config = directory / "slapd.conf"
    config.write_text(
        f"include {schema}/core.schema\n"
        f"include {schema}/cosine.schema\n"
        f"include {schema}/inetorgperson.schema\n"
        f"include {directory}/ad.schema\n"
        f"pidfile {directory}/slapd.pid\n"
        f"argsfile {directory}/slapd.args\n"
        f"modulepath {modules}\n"
        "moduleload back_mdb\n"
        "database mdb\n"
        "maxsize 10485760\n"
        f'suffix "{BASE_DN}"\n'
        f'rootdn "{ROOT_DN}"\n'
        f"rootpw {ROOT_PASSWORD}\n"
        f"directory {data}\n" + ACCESS
    )
    loaded = subprocess.run(
        [str(slapadd), "-f", str(config), "-l", str(directory / "people.ldif")],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if loaded.returncode != 0:
        raise SlapdUnavailable(f"slapadd failed: {loaded.stderr.strip()[-500:]}")

    port = free_port()
    log = (directory / "slapd.log").open("w")
    # -d 0: stay in the foreground (so we own the process) without debug output.
    process = subprocess.Popen(
        [str(slapd), "-d", "0", "-f", str(config), "-h", f"ldap://127.0.0.1:{port}/"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    server = Slapd(process, port, directory)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = (directory / "slapd.log").read_text()[-500:]
            raise SlapdUnavailable(f"slapd exited with {process.returncode}: {output}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise SlapdUnavailable(f"slapd did not listen on 127.0.0.1:{port} within {timeout} s")
