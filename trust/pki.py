"""X.509 for the trust layer: chain validation, a development scheme CA, party identities, PEM/PKCS#12."""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from trust.errors import CertificateError, IdentifierError

ORGANIZATION_IDENTIFIER = x509.ObjectIdentifier("2.5.4.97")
MIN_RSA_BITS = 2048
_EORI = re.compile(r"^EU\.EORI\.[A-Z]{2}[A-Za-z0-9]{1,15}$")
_DID_ISHARE = re.compile(r"^did:ishare:EU\.NL\.NTRNL-[0-9]{8}$")
# did:web (W3C CCG): a host (a port as %3A) and optional path segments; iSHARE 3.0 alsoKnownAs.
_DID_WEB = re.compile(r"^did:web:[a-z0-9-]+(\.[a-z0-9-]+)+(%3A[0-9]{1,5})?(:[A-Za-z0-9._~-]+)*$")
_STRUCTURE_CACHE_SIZE = 1024
_STRUCTURE_OK: set[tuple[x509.Certificate, ...]] = set()


def validate_chain(
    chain: list[x509.Certificate], trusted_sha256: set[str], at: dt.datetime
) -> x509.Certificate:
    """Validate an x5c chain (signer first) against trusted CA fingerprints; return the leaf.

    Raises CertificateError whose `check` names the failed check.
    """
    if not chain:
        raise CertificateError("chain_empty", "no certificates in x5c")
    at = _aware(at)
    trusted = {normalise_fingerprint(f) for f in trusted_sha256}
    leaf = chain[0]
    for i, cert in enumerate(chain):
        if not (cert.not_valid_before_utc <= at <= cert.not_valid_after_utc):
            raise CertificateError("validity", f"certificate {i} not valid at {at.isoformat()}")
    _check_structure(tuple(chain))
    anchors = [c for c in chain[1:] if fingerprint_sha256(c) in trusted]
    if not anchors:
        raise CertificateError(
            "untrusted_root", "no certificate in the chain is on the trusted list"
        )
    return leaf


def _check_structure(chain: tuple[x509.Certificate, ...]) -> None:
    """Time-independent checks (signature links, CA flags, leaf profile); successes are cached."""
    if chain in _STRUCTURE_OK:
        return
    leaf = chain[0]
    for i, cert in enumerate(chain):
        if i + 1 < len(chain):
            issuer = chain[i + 1]
            if not _is_ca(issuer):
                raise CertificateError("issuer_not_ca", f"certificate {i + 1} is not a CA")
            try:
                cert.verify_directly_issued_by(issuer)
            except (ValueError, TypeError, InvalidSignature) as exc:
                raise CertificateError(
                    "chain_signature", f"certificate {i} not signed by certificate {i + 1}"
                ) from exc
    _check_leaf(leaf)
    if len(chain) == 1 and leaf.issuer == leaf.subject:
        raise CertificateError("self_signed_leaf", "leaf certificate is self-signed")
    if len(_STRUCTURE_OK) >= _STRUCTURE_CACHE_SIZE:
        _STRUCTURE_OK.clear()
    _STRUCTURE_OK.add(chain)


def normalise_fingerprint(value: str) -> str:
    """Uppercase hex without separators, as on the iSHARE trusted list."""
    return value.replace(":", "").replace(" ", "").upper()


@lru_cache(maxsize=1024)
def fingerprint_sha256(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate, uppercase hex (trusted-list form)."""
    return cert.fingerprint(hashes.SHA256()).hex().upper()


def x5t_s256(cert: x509.Certificate) -> str:
    """iSHARE `x5t#s256`: SHA-256 of the DER certificate, lowercase hex."""
    return cert.fingerprint(hashes.SHA256()).hex()


def cert_to_x5c(cert: x509.Certificate) -> str:
    """Base64 (standard, padded) DER, the RFC 7515 x5c element form."""
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")


def validate_party_id(party_id: str) -> str:
    """Accept `EU.EORI.<CC>...`, `did:ishare:EU.NL.NTRNL-<8-digit KvK>` or `did:web:host...`."""
    if not isinstance(party_id, str) or not (
        _EORI.match(party_id) or _DID_ISHARE.match(party_id) or _DID_WEB.match(party_id)
    ):
        raise IdentifierError(
            "party_id_format", f"not an EORI, did:ishare or did:web id: {party_id!r}"
        )
    return party_id


def party_iri(party_id: str) -> str:
    """A party as an IRI for RDF: `urn:ishare:{id}`, unless the id already is one (did:, urn:)."""
    if ":" in party_id and party_id.split(":", 1)[0] in ("did", "urn", "http", "https"):
        return party_id
    return f"urn:ishare:{quote(party_id, safe='.-_')}"


def certificate_party_ids(cert: x509.Certificate) -> set[str]:
    """Identifiers a certificate carries: subject serialNumber and organizationIdentifier."""
    ids: set[str] = set()
    for oid in (NameOID.SERIAL_NUMBER, ORGANIZATION_IDENTIFIER):
        for attr in cert.subject.get_attributes_for_oid(oid):
            if isinstance(attr.value, str):
                ids.add(attr.value)
    return ids


def certificate_matches_party(cert: x509.Certificate, party_id: str) -> bool:
    """True if the certificate names the party (full id, or the did:ishare tail e.g. NTRNL-...)."""
    ids = certificate_party_ids(cert)
    if party_id in ids:
        return True
    if party_id.startswith("did:ishare:"):
        tail = party_id.rsplit(".", 1)[-1]
        return tail in ids
    return False


@dataclass(frozen=True)
class PartyIdentity:
    """A party's signing identity: id, private key and certificate chain (signer first)."""

    party_id: str
    private_key: rsa.RSAPrivateKey
    chain: list[x509.Certificate]
    x5c: list[str] = field(default_factory=list, compare=False)

    def __post_init__(self) -> None:
        if not self.chain:
            raise CertificateError("chain_empty", "identity without certificates")
        if not self.x5c:
            object.__setattr__(self, "x5c", [cert_to_x5c(c) for c in self.chain])

    @property
    def certificate(self) -> x509.Certificate:
        return self.chain[0]


@dataclass(frozen=True)
class DevCA:
    """Development scheme CA: a self-signed root and an issuing CA below it."""

    root_cert: x509.Certificate
    root_key: rsa.RSAPrivateKey
    issuing_cert: x509.Certificate
    issuing_key: rsa.RSAPrivateKey

    @property
    def root_fingerprint(self) -> str:
        return fingerprint_sha256(self.root_cert)


def create_dev_ca(name: str = "DSGO Development", now: dt.datetime | None = None) -> DevCA:
    """Create a root CA and an issuing CA (both RSA-2048, 10 years) for development and tests."""
    now = _aware(now or dt.datetime.now(dt.UTC))
    root_key = new_rsa_key()
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} Root CA")])
    root = _build(root_name, root_name, root_key, root_key, now, 3650, ca=True, path_len=1)
    issuing_key = new_rsa_key()
    issuing_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} Issuing CA")])
    issuing = _build(issuing_name, root_name, issuing_key, root_key, now, 3650, ca=True, path_len=0)
    return DevCA(root, root_key, issuing, issuing_key)


def issue_party_certificate(
    ca: DevCA,
    party_id: str,
    name: str,
    *,
    key: rsa.RSAPrivateKey | None = None,
    now: dt.datetime | None = None,
    valid_days: int = 730,
    key_usage: tuple[str, ...] = ("digital_signature", "content_commitment"),
    ca_flag: bool = False,
) -> PartyIdentity:
    """Issue a party seal certificate (id in serialNumber and organizationIdentifier) + RSA-2048 key.

    `key_usage`/`ca_flag` exist so tests can create deliberately wrong certificates.
    """
    validate_party_id(party_id)
    now = _aware(now or dt.datetime.now(dt.UTC))
    key = key or new_rsa_key()
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, name),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, party_id),
            x509.NameAttribute(ORGANIZATION_IDENTIFIER, party_id),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "NL"),
        ]
    )
    cert = _build(
        subject,
        ca.issuing_cert.subject,
        key,
        ca.issuing_key,
        now,
        valid_days,
        ca=ca_flag,
        path_len=None,
        key_usage=key_usage,
    )
    return PartyIdentity(party_id, key, [cert, ca.issuing_cert, ca.root_cert])


def new_rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def load_certificates_pem(data: bytes) -> list[x509.Certificate]:
    """All certificates in a PEM bundle, in file order."""
    certs = x509.load_pem_x509_certificates(data)
    if not certs:
        raise CertificateError("pem", "no certificate in PEM data")
    return certs


def load_pem_identity(
    key_pem: bytes | Path | str,
    chain_pem: bytes | Path | str,
    passphrase: bytes | str | None = None,
    party_id: str | None = None,
) -> PartyIdentity:
    """Load a private key and certificate chain (signer first) from PEM bytes or file paths."""
    key = _load_pem_private_key(_read(key_pem), _pw(passphrase))
    chain = load_certificates_pem(_read(chain_pem))
    return _identity(key, chain, party_id)


@lru_cache(maxsize=16)
def _load_pem_private_key(data: bytes, password: bytes | None):
    """`load_pem_private_key`, once per (PEM, passphrase) in a process.

    Loading an RSA key validates it (about 70 ms for 2048 bits), and one `dsgo` command may load
    the node's key several times (a command sent to the running node loads it for its trust
    client and again for the registry lookup). The same bytes always give the same validated,
    immutable key object, so the result is cached; a key that fails to load is not cached.
    """
    return serialization.load_pem_private_key(data, password=password)


def load_pkcs12_identity(
    data: bytes | Path | str, passphrase: bytes | str | None, party_id: str | None = None
) -> PartyIdentity:
    """Load key + chain from a PKCS#12 file; extra certificates ordered leaf-to-root."""
    key, cert, extra = pkcs12.load_key_and_certificates(_read(data), _pw(passphrase))
    if key is None or cert is None:
        raise CertificateError("pkcs12", "PKCS#12 lacks a key or certificate")
    return _identity(key, [cert, *_order_chain(cert, list(extra or []))], party_id)


def identity_to_pem(
    identity: PartyIdentity, passphrase: bytes | str | None = None
) -> tuple[bytes, bytes]:
    """(key PEM, chain PEM); the key is encrypted when a passphrase is given."""
    enc = (
        serialization.BestAvailableEncryption(_pw(passphrase))
        if passphrase
        else serialization.NoEncryption()
    )
    key = identity.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc
    )
    chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in identity.chain)
    return key, chain


def write_pem_identity(
    identity: PartyIdentity, key_path: Path, chain_path: Path, passphrase: bytes | str | None = None
) -> None:
    """Write key (mode 0600) and chain PEM files."""
    key, chain = identity_to_pem(identity, passphrase)
    _write_private(Path(key_path), key)
    Path(chain_path).write_bytes(chain)


def identity_to_pkcs12(identity: PartyIdentity, passphrase: bytes | str) -> bytes:
    """PKCS#12 bytes holding key, leaf and the rest of the chain."""
    return pkcs12.serialize_key_and_certificates(
        identity.party_id.encode(),
        identity.private_key,
        identity.chain[0],
        identity.chain[1:] or None,
        serialization.BestAvailableEncryption(_pw(passphrase)),
    )


def write_pkcs12_identity(identity: PartyIdentity, path: Path, passphrase: bytes | str) -> None:
    _write_private(Path(path), identity_to_pkcs12(identity, passphrase))


def _check_leaf(leaf: x509.Certificate) -> None:
    if _is_ca(leaf):
        raise CertificateError("leaf_is_ca", "signing certificate is a CA certificate")
    try:
        ku = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise CertificateError("key_usage", "leaf has no keyUsage extension") from exc
    if not (ku.digital_signature or ku.content_commitment):
        raise CertificateError("key_usage", "leaf lacks digitalSignature/nonRepudiation")
    pub = leaf.public_key()
    if not isinstance(pub, rsa.RSAPublicKey):
        raise CertificateError("key_type", "leaf key is not RSA")
    if pub.key_size < MIN_RSA_BITS:
        raise CertificateError("key_size", f"RSA key of {pub.key_size} bits < {MIN_RSA_BITS}")


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _build(
    subject: x509.Name,
    issuer: x509.Name,
    key: rsa.RSAPrivateKey,
    signer: rsa.RSAPrivateKey,
    now: dt.datetime,
    days: int,
    *,
    ca: bool,
    path_len: int | None,
    key_usage: tuple[str, ...] | None = None,
) -> x509.Certificate:
    if key_usage is None:
        key_usage = ("key_cert_sign", "crl_sign", "digital_signature") if ca else ()
    flags = {
        f: f in key_usage
        for f in (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
        )
    }
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_len if ca else None), True)
        .add_extension(
            x509.KeyUsage(**flags, encipher_only=False, decipher_only=False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    return builder.sign(signer, hashes.SHA256())


def _identity(key: object, chain: list[x509.Certificate], party_id: str | None) -> PartyIdentity:
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CertificateError("key_type", "party key must be RSA")
    if key.public_key().public_numbers() != chain[0].public_key().public_numbers():
        raise CertificateError("key_mismatch", "private key does not match the first certificate")
    if party_id is None:
        ids = sorted(certificate_party_ids(chain[0]))
        if not ids:
            raise CertificateError("party_id", "certificate carries no party id")
        party_id = next((i for i in ids if _EORI.match(i) or _DID_ISHARE.match(i)), ids[0])
    return PartyIdentity(party_id, key, chain)


def _order_chain(leaf: x509.Certificate, rest: list[x509.Certificate]) -> list[x509.Certificate]:
    ordered, current = [], leaf
    while rest:
        nxt = next((c for c in rest if c.subject == current.issuer), None)
        if nxt is None or nxt is current:
            break
        ordered.append(nxt)
        rest.remove(nxt)
        current = nxt
    return ordered + rest


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _pw(passphrase: bytes | str | None) -> bytes | None:
    if passphrase is None or passphrase == b"" or passphrase == "":
        return None
    return passphrase.encode() if isinstance(passphrase, str) else passphrase


def _read(src: bytes | Path | str) -> bytes:
    return src if isinstance(src, bytes) else Path(src).read_bytes()


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def save_dev_ca(ca: DevCA, directory: Path) -> None:
    """Write a development CA as PEM files (keys readable by the owner only)."""
    directory.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    for name, cert in (("root", ca.root_cert), ("issuing", ca.issuing_cert)):
        (directory / f"{name}.cert.pem").write_bytes(cert.public_bytes(pem))
    for name, key in (("root", ca.root_key), ("issuing", ca.issuing_key)):
        _write_private(
            directory / f"{name}.key.pem",
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        )


def load_dev_ca(directory: Path) -> DevCA:
    """Read a development CA written by save_dev_ca."""

    def cert(name: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate((directory / f"{name}.cert.pem").read_bytes())

    def key(name: str) -> rsa.RSAPrivateKey:
        loaded = serialization.load_pem_private_key(
            (directory / f"{name}.key.pem").read_bytes(), None
        )
        assert isinstance(loaded, rsa.RSAPrivateKey)
        return loaded

    return DevCA(cert("root"), key("root"), cert("issuing"), key("issuing"))
