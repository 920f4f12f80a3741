"""Engine components 4-6: a local OCI registry, a local Python package index, and a web server for the
static channels.

All listen on loopback only; the registry and the index ask for a password to push/upload, the index and
the channels serve installs anonymously (the channels are written as files, by rclone).
"""

from __future__ import annotations

import getpass
import json
import secrets
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from .. import tools
from ..console import step
from ..errors import EngineError
from . import docker
from .credentials import Credential, write_private
from .host import Status, apt_install, port_open, start_service, started_by, wait_for

LOOPBACK = ("127.0.0.1", "localhost")
PYPISERVER = "pypiserver[passlib]==2.4.2"


def split_address(address: str) -> tuple[str, int]:
    """``127.0.0.1:5000`` → ("127.0.0.1", 5000); the port defaults to 443."""
    host, _, port = address.partition(":")
    return host, int(port or 443)


def registry_address(image_repository: str) -> str:
    """The registry part of an image repository (``127.0.0.1:5000/ns`` → ``127.0.0.1:5000``)."""
    return image_repository.split("/", 1)[0]


def index_address(index_url: str) -> str:
    """host:port of a package index URL."""
    parts = urlsplit(index_url)
    return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


def is_local(address: str) -> bool:
    """True for an address on this machine's loopback, which the engine runs itself."""
    return split_address(address)[0] in LOOPBACK


def _htpasswd(path: Path, cred: Credential) -> None:
    # bcrypt (-B) is the only scheme the registry accepts; the password goes through stdin. At its lowest
    # cost (-C 4): the services check it on every request (~2 ms less each), and a random 192-bit password
    # (credentials.py) needs no key stretching against guessing.
    line = tools.run(["htpasswd", "-niBC", "4", cred.username], input=cred.password + "\n", capture=True).stdout
    write_private(path, (line.strip() + "\n").encode())


def _service_status(name: str, address: str, state: Path, version: str) -> Status:
    host, port = split_address(address)
    if not port_open(host, port):
        return Status(name=name, up=False, address=address)
    return Status(name=name, up=True, version=version, address=address, started_by=started_by(state, name))


def registry_status(state: Path, address: str) -> Status:
    """Whether the registry at ``address`` answers."""
    version = ""
    if tools.which("docker-registry"):
        out = tools.run(["docker-registry", "--version"], capture=True, quiet=True, check=False).stdout
        version = out.split()[-1] if out.split() else ""
    return _service_status("registry", address, state / "registry", version)


def _serve(name: str, what: str, address: str, home: Path, setup: Callable[[str, int], list]) -> None:
    """Start service ``name`` unless something answers at ``address``; only loopback ones are ours to start.

    ``setup(host, port)`` installs and configures it and returns the argv that serves.
    """
    host, port = split_address(address)
    if port_open(host, port):
        return
    if not is_local(address):
        raise EngineError(f"the {what} {address} (from [publish]) does not answer")
    argv = setup(host, port)
    step(f"starting the {what} on {address}")
    start_service(name, argv, home)
    wait_for(lambda: port_open(host, port), f"the {what} on {address}", log=home / f"{name}.log")


def ensure_registry(state: Path, address: str, cred: Credential) -> Status:
    """Start Debian's docker-registry on ``address`` (loopback) unless one answers; log in."""
    home = state / "registry"

    def setup(host: str, port: int) -> list:
        if tools.which("docker-registry") is None or tools.which("htpasswd") is None:
            apt_install(["docker-registry", "apache2-utils"], "the local registry")
        (home / "data").mkdir(parents=True, exist_ok=True)
        _htpasswd(home / "htpasswd", cred)
        config = {
            "version": 0.1,
            "log": {"level": "warn"},
            "storage": {"filesystem": {"rootdirectory": str(home / "data")}, "delete": {"enabled": True}},
            "http": {"addr": f"{host}:{port}", "secret": secrets.token_hex(16)},
            "auth": {"htpasswd": {"realm": "gpu-toolkit", "path": str(home / "htpasswd")}},
        }
        write_private(home / "config.yml", json.dumps(config, indent=2).encode())  # JSON is YAML
        return ["docker-registry", "serve", home / "config.yml"]

    _serve("registry", "registry", address, home, setup)
    docker.login(address, cred)
    return registry_status(state, address)


def index_status(state: Path, address: str) -> Status:
    """Whether the package index at ``address`` answers."""
    venv = state / "index" / "venv"
    version = ""
    if (venv / "bin" / "pypi-server").exists():
        version = tools.run([venv / "bin" / "pypi-server", "--version"], capture=True, quiet=True,
                            check=False).stdout.strip()
    return _service_status("index", address, state / "index", version)


def ensure_index(state: Path, address: str, cred: Credential) -> Status:
    """Start pypiserver (in its own venv) on ``address`` unless an index answers there."""
    home = state / "index"

    def setup(host: str, port: int) -> list:
        venv = home / "venv"
        if not (venv / "bin" / "pypi-server").exists():
            step(f"installing {PYPISERVER} into {venv}")
            tools.run([sys.executable, "-m", "venv", venv])
            tools.run([venv / "bin" / "pip", "install", "--quiet", PYPISERVER])
        if tools.which("htpasswd") is None:
            apt_install(["apache2-utils"], "htpasswd for the package index")
        (home / "packages").mkdir(parents=True, exist_ok=True)
        _htpasswd(home / "htpasswd", cred)
        return [venv / "bin" / "pypi-server", "run", "--host", host, "--port", str(port), "--passwords",
                home / "htpasswd", "--authenticate", "update", "--disable-fallback", home / "packages"]

    _serve("index", "package index", address, home, setup)
    return index_status(state, address)


# Workers run as the owner of the files they serve (the default, nobody, cannot read a private state directory).
# PEP 691: a client that asks for JSON gets the project page's index.json, any other the PEP 503 index.html.
_NGINX_CONF = """daemon off;
user {user};
pid {home}/nginx.pid;
error_log {home}/error.log warn;
worker_processes 1;
events {{}}
http {{
    access_log off;
    client_body_temp_path {home}/tmp/body;
    proxy_temp_path {home}/tmp/proxy;
    fastcgi_temp_path {home}/tmp/fastcgi;
    uwsgi_temp_path {home}/tmp/uwsgi;
    scgi_temp_path {home}/tmp/scgi;
    types {{ text/html html; application/json json; }}
    default_type application/octet-stream;
    map $http_accept $simple_page {{
        "~application/vnd\\.pypi\\.simple\\.v1\\+json" index.json;
        default index.html;
    }}
    server {{
        listen {host}:{port};
        root {root};
        index $simple_page;
        add_header Vary Accept;
        location ~ /index\\.json$ {{ default_type application/vnd.pypi.simple.v1+json; types {{}} }}
    }}
}}
"""


def channels_status(state: Path, address: str) -> Status:
    """Whether the channels' web server at ``address`` answers."""
    version = ""
    if tools.which("nginx"):
        version = tools.run(["nginx", "-v"], capture=True, quiet=True, check=False).stderr.strip().split("/")[-1]
    return _service_status("channels", address, state / "channels-server", version)


def ensure_channels(state: Path, address: str, root: Path | None) -> Status:
    """rclone (which writes the channels) on PATH; and, for a channel root on this machine, nginx serving it
    on ``address`` (loopback) unless something answers there."""
    if tools.which("rclone") is None:
        apt_install(["rclone"], "writing the package channels")
    if root is None:
        return channels_status(state, address)
    home = state / "channels-server"

    def setup(host: str, port: int) -> list:
        if tools.which("nginx") is None:
            apt_install(["nginx-light"], "serving the package channels")
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (home / "tmp" / sub).mkdir(parents=True, exist_ok=True)
        root.mkdir(parents=True, exist_ok=True)
        log = home / "error.log"  # nginx appends to it, keeping its mode: service logs are private to their owner
        log.touch(mode=0o600)
        log.chmod(0o600)
        (home / "nginx.conf").write_text(_NGINX_CONF.format(home=home, host=host, port=port, root=root,
                                                            user=getpass.getuser()))
        return ["nginx", "-c", home / "nginx.conf", "-e", home / "error.log"]

    _serve("channels", "channel server", address, home, setup)
    return channels_status(state, address)
