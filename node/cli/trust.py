"""`dsgo trust ...` (development CA, party certificates) and `dsgo registry ...`."""

from __future__ import annotations

import argparse
import os

from node.cli._common import (
    CliError,
    _settings,
)


def cmd_trust_ca(args: argparse.Namespace) -> int:
    from trust.pki import create_dev_ca, save_dev_ca

    if (args.dir / "root.cert.pem").exists():
        raise CliError(f"{args.dir} already holds a CA")
    ca = create_dev_ca(args.name)
    save_dev_ca(ca, args.dir)
    print(f"development CA in {args.dir}; root fingerprint {ca.root_fingerprint}")
    return 0


def cmd_trust_issue(args: argparse.Namespace) -> int:
    from trust.pki import (
        issue_party_certificate,
        load_dev_ca,
        validate_party_id,
        write_pem_identity,
        write_pkcs12_identity,
    )

    validate_party_id(args.party_id)
    ca = load_dev_ca(args.ca)
    identity = issue_party_certificate(ca, args.party_id, args.name)
    args.out.mkdir(parents=True, exist_ok=True)
    write_pem_identity(identity, args.out / "key.pem", args.out / "cert.pem")
    if args.pkcs12_passphrase_env:
        passphrase = os.environ.get(args.pkcs12_passphrase_env)
        if not passphrase:
            raise CliError(f"${args.pkcs12_passphrase_env} is empty")
        write_pkcs12_identity(identity, args.out / "party.p12", passphrase)
    print(f"issued {args.party_id}: {args.out / 'key.pem'}, {args.out / 'cert.pem'}")
    return 0


def cmd_trust_fingerprint(args: argparse.Namespace) -> int:
    from trust.pki import fingerprint_sha256, load_certificates_pem

    for cert in load_certificates_pem(args.pem.read_bytes()):
        print(f"{fingerprint_sha256(cert)}  {cert.subject.rfc4514_string()}")
    return 0


def _registry(args: argparse.Namespace):
    from node.state import open_registry

    settings = _settings(args)
    if "registry" not in settings.roles:
        raise CliError(
            f"{settings.config_path} is not a registry node (node.roles lacks 'registry')"
        )
    return open_registry(settings)


def cmd_registry_add(args: argparse.Namespace) -> int:
    from trust.pki import load_certificates_pem, validate_party_id

    validate_party_id(args.party_id)
    certs = load_certificates_pem(args.cert.read_bytes())
    registry = _registry(args)
    registry.add_party(
        args.party_id,
        args.name,
        certificates=certs[:1],
        status=args.status,
        roles=args.role or ["ServiceConsumer", "ServiceProvider"],
        capability_url=args.capability_url,
        also_known_as=args.also_known_as,
        auth_registries=[_auth_registry(v) for v in args.auth_registry],
    )
    print(f"registered {args.party_id} ({args.status})")
    return 0


def _auth_registry(value: str):
    """`ID[;PROVIDER[;SERVICE]]` -> an AuthRegistry (ids checked)."""
    from trust.pki import validate_party_id
    from trust.registry import AuthRegistry

    parts = value.split(";")
    if len(parts) > 3 or not parts[0]:
        raise CliError(f"--auth-registry {value!r}: use ID[;SERVICE_PROVIDER[;SERVICE]]")
    validate_party_id(parts[0])
    provider = parts[1] if len(parts) > 1 else ""
    if provider:
        validate_party_id(provider)
    service = parts[2] if len(parts) > 2 else ""
    return AuthRegistry(parts[0], service_provider=provider, service=service)


def cmd_registry_status(args: argparse.Namespace) -> int:
    _registry(args).set_status(args.party_id, args.status)
    print(f"{args.party_id}: {args.status}")
    return 0


def cmd_registry_list(args: argparse.Namespace) -> int:
    for party in _registry(args).find_parties():
        print(f"{party.party_id}\t{party.adherence.status}\t{party.name}")
    return 0


def cmd_registry_trust_ca(args: argparse.Namespace) -> int:
    from trust.pki import load_certificates_pem

    registry = _registry(args)
    for cert in load_certificates_pem(args.cert.read_bytes()):
        entry = registry.add_trusted_ca(cert)
        print(f"trusted {entry.certificate_fingerprint}")
    return 0


def cmd_state_import(args: argparse.Namespace) -> int:
    from node.state_import import import_sqlite_state

    print(import_sqlite_state(_settings(args)).line())
    return 0
