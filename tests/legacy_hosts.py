"""Run an unmodified client against the registry server under the real legacy host names, on 127.0.0.1 only.

Code written for TF Hub and Kaggle names ``https://tfhub.dev/...``, ``https://storage.googleapis.com/...``
and ``https://api.kaggle.com/...``; it cannot be told another address. So the test gives those names to the
registry server, only for the client it runs, and nothing else on the machine sees the change:

- a test certificate authority made in the test (``CertificateAuthority``, with the ``cryptography`` package), and a
  server certificate for the names (and 127.0.0.1) signed by it; the client trusts only that CA
  (``SSL_CERT_FILE``, ``REQUESTS_CA_BUNDLE``);
- a private network namespace and mount namespace (``unshare -n -m``, we run as root): the namespace's own
  loopback, so the server listens on port 443 there without clashing with anything outside, and no route
  anywhere else (nothing can leave 127.0.0.1); a hosts file mapping the names to 127.0.0.1, bind-mounted over
  ``/etc/hosts`` for that namespace only;
- inside it, ``model-registry serve --port 443 --ssl-certfile --ssl-keyfile`` over the catalog the test made
  (its environment), then the client command; the server is stopped when the client ends.

``run_behind_legacy_hosts`` does all of it and returns the client's completed process (with the server's
log). ``run_offline`` runs a command in a network namespace with no network at all (``unshare -n``), for
clients that must work from a local cache. Run as a script, this module is the part inside the namespace.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The names legacy clients use: tensorflow_hub (tfhub.dev, its bucket) and kagglehub (the Kaggle API, pages).
LEGACY_HOSTS = ("tfhub.dev", "www.tfhub.dev", "storage.googleapis.com", "api.kaggle.com", "www.kaggle.com",
                "kaggle.com")
LOOPBACK = "127.0.0.1"
HTTPS_PORT = 443


@dataclass(frozen=True)
class CertificateAuthority:
    """A certificate authority made for one test, and a server certificate it signed for ``names``."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    @classmethod
    def create(cls, root: Path, names: tuple[str, ...] = LEGACY_HOSTS) -> "CertificateAuthority":
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        root.mkdir(parents=True, exist_ok=True)
        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tf-model-registry test CA")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                           content_commitment=False, key_encipherment=False, data_encipherment=False,
                                           key_agreement=False, encipher_only=False, decipher_only=False),
                             critical=True)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        alt_names = [x509.DNSName(name) for name in names] + [x509.IPAddress(ipaddress.ip_address(LOOPBACK))]
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
                .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        made = cls(ca_file=root / "ca.pem", cert_file=root / "server.pem", key_file=root / "server-key.pem")
        made.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        made.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        made.key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
        return made

    def client_env(self) -> dict[str, str]:
        """What makes Python's ``ssl`` (urllib, tensorflow_hub) and ``requests`` (kagglehub) trust this CA only."""
        return {"SSL_CERT_FILE": str(self.ca_file), "REQUESTS_CA_BUNDLE": str(self.ca_file),
                "CURL_CA_BUNDLE": str(self.ca_file)}


def _hosts_text(names: tuple[str, ...]) -> str:
    return f"{LOOPBACK} localhost\n" + "".join(f"{LOOPBACK} {name}\n" for name in names)


def run_behind_legacy_hosts(client: list[str], *, server_env: dict, root: Path, client_env: dict | None = None,
                            names: tuple[str, ...] = LEGACY_HOSTS, ca: CertificateAuthority | None = None,
                            timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``client`` (a command) with ``names`` pointing at ``model-registry serve`` (``server_env``: its
    catalog, storage and cache) over HTTPS on 127.0.0.1:443, in a private namespace (see the module).

    Returns the client's completed process; ``.server_log`` holds the server's output. ``client_env`` is the
    client's whole environment (the test CA's variables are added).
    """
    root.mkdir(parents=True, exist_ok=True)
    ca = ca or CertificateAuthority.create(root / "tls", names)
    hosts = root / "hosts"
    hosts.write_text(_hosts_text(names))
    config = root / "namespace.json"
    log = root / "server.log"
    out, err = root / "client.out", root / "client.err"
    config.write_text(json.dumps({
        "hosts": str(hosts), "server": [str(Path(sys.executable).with_name("model-registry")), "serve", "--host",
                                        LOOPBACK, "--port", str(HTTPS_PORT), "--ssl-certfile", str(ca.cert_file),
                                        "--ssl-keyfile", str(ca.key_file)],
        "server_env": server_env, "server_log": str(log), "health": f"https://{names[0]}/healthz",
        "ca": str(ca.ca_file), "client": client, "client_env": {**(client_env or os.environ), **ca.client_env()},
        "client_out": str(out), "client_err": str(err), "timeout": timeout}))
    inner = subprocess.run(["unshare", "--net", "--mount", "--", sys.executable, str(Path(__file__).resolve()),
                            str(config)], capture_output=True, text=True, timeout=timeout + 120)
    done = subprocess.CompletedProcess(client, inner.returncode,
                                       out.read_text(errors="replace") if out.exists() else "",
                                       (err.read_text(errors="replace") if err.exists() else "") + inner.stderr)
    done.server_log = log.read_text(errors="replace") if log.exists() else ""  # type: ignore[attr-defined]
    return done


def run_offline(command: list[str], *, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``command`` in a network namespace of its own with nothing in it (not even a loopback that is up):
    any attempt to reach a host fails at once."""
    return subprocess.run(["unshare", "--net", "--", *command], capture_output=True, text=True, timeout=timeout,
                          env=env)


# -- inside the namespace ----------------------------------------------------------------------------------------

def _inside(config_path: str) -> int:
    import ssl
    import urllib.request

    config = json.loads(Path(config_path).read_text())
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["mount", "--bind", config["hosts"], "/etc/hosts"], check=True)
    with open(config["server_log"], "ab") as log:
        server = subprocess.Popen(config["server"], env=config["server_env"], stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        context = ssl.create_default_context(cafile=config["ca"])
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                print(f"model-registry serve exited with {server.returncode}", file=sys.stderr)
                return 90
            try:
                with urllib.request.urlopen(config["health"], timeout=2, context=context) as response:
                    if response.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    print("model-registry serve did not become healthy in 90 s", file=sys.stderr)
                    return 91
                time.sleep(0.3)
        with open(config["client_out"], "wb") as out, open(config["client_err"], "wb") as err:
            try:
                return subprocess.run(config["client"], env=config["client_env"], stdout=out, stderr=err,
                                      timeout=config["timeout"]).returncode
            except subprocess.TimeoutExpired:
                print(f"the client ran longer than {config['timeout']} s", file=sys.stderr)
                return 124
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


if __name__ == "__main__":
    sys.exit(_inside(sys.argv[1]))
