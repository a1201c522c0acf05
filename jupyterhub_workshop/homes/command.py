"""``jupyterhub-workshop homes``: archive, verify, restore, delete (thin over the package).

Usernames reach no shell: homes are paths and object names handled by Python alone.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tarfile
import zlib
from pathlib import Path

from ..wording import count
from . import archive, cluster, listing, tarball
from .destinations import open_destination
from .manifest import archive_name, coverage, may_delete

AFTERWARDS = "close the hub, archive, verify, then uninstall; deleting homes is a separate step"


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="homes_command", required=True, metavar="ACTION")

    def destination_options(p, flag="--to", required=True):
        p.add_argument(
            flag,
            dest="destination",
            required=required,
            metavar="DEST",
            help="a directory (e.g. a mounted volume claim) or s3://bucket/prefix; S3 credentials "
            "from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
            "AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE), never on the command line",
        )
        p.add_argument(
            "--endpoint-url",
            help="S3-compatible service other than AWS (default: $AWS_ENDPOINT_URL_S3 or $AWS_ENDPOINT_URL)",
        )

    def homes_options(p, required=False):
        p.add_argument(
            "--homes",
            type=Path,
            required=required,
            help="a directory holding one directory per home: the claims mounted at DIR/<claim>, "
            "or a static claim's (or the demo's) per-user directories",
        )
        p.add_argument(
            "--namespace",
            help="ask this Kubernetes namespace which home claims exist (KubeSpawner's, label "
            f"{cluster.HOME_CLAIM_SELECTOR}): every one of them must be covered",
        )

    a = commands.add_parser(
        "archive",
        help="write each home to one .tar.gz and a manifest, verifying each archive against its home",
    )
    homes_options(a, required=True)
    destination_options(a)
    a.add_argument("--only", action="append", default=[], metavar="HOME", help="only this home (repeatable)")
    a.add_argument("--work-dir", type=Path, help="S3: where an archive waits for upload (default: $TMPDIR)")
    a.set_defaults(homes_run=run_archive)

    v = commands.add_parser(
        "verify",
        help="check that verified archives cover every home (exit 1 naming those not covered)",
    )
    homes_options(v)
    destination_options(v, "--archive")
    v.add_argument("--read", action="store_true", help="also read every archive back and check its sha256")
    v.set_defaults(homes_run=run_verify)

    r = commands.add_parser("restore", help="unpack one home's archive into a new directory")
    destination_options(r, "--archive")
    r.add_argument("home", help="the home's name in the manifest (its claim, e.g. claim-esip001)")
    r.add_argument("--into", type=Path, required=True, help="a new (or empty) directory")
    r.set_defaults(homes_run=run_restore)

    d = commands.add_parser(
        "delete",
        help="delete home claims (--namespace) or home directories (--homes), only if archived",
    )
    homes_options(d)
    destination_options(d, "--archive", required=False)
    d.add_argument(
        "--i-have-no-archive",
        action="store_true",
        help="delete even though no verified archive covers the homes (their work is lost)",
    )
    d.add_argument("--yes", action="store_true", help="really delete (without it: say what would go)")
    d.set_defaults(homes_run=run_delete)


def run(args) -> int:
    try:
        return args.homes_run(args)
    except (ImportError, cluster.ClusterError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except Exception as e:
        # S3 and Kubernetes clients' own errors (credentials, permissions, unreachable)
        if type(e).__module__.split(".")[0] in ("botocore", "boto3", "kubernetes_asyncio", "aiohttp"):
            print(f"error: {e}", file=sys.stderr)
            return 1
        raise


def _destination(args):
    return open_destination(args.destination, args.endpoint_url, getattr(args, "work_dir", None))


def _homes(args) -> tuple[list[archive.Home], list[str]]:
    """The homes to archive: directories under --homes; with --namespace exactly the claims (and
    the claims not found under --homes, to name)."""
    only = getattr(args, "only", [])
    if not args.namespace:
        return archive.homes_in(args.homes, only), []
    claims = [c for c in cluster.home_claims(args.namespace) if not only or c.name in only]
    unknown = set(only) - {c.name for c in claims}
    if unknown:
        raise ValueError(f"no home claim {', '.join(sorted(unknown))} in namespace {args.namespace}")
    homes, absent = [], []
    for claim in claims:
        path = args.homes / claim.name
        if path.is_dir():
            homes.append(archive.Home(claim.name, path, claim.user))
        else:
            absent.append(claim.name)
    return homes, absent


def run_archive(args) -> int:
    destination = _destination(args)
    homes, absent = _homes(args)
    target = getattr(destination, "path", None)
    for home in homes if target is not None else ():
        if target.resolve().is_relative_to(home.path.resolve()):
            raise ValueError(
                f"{target} is the home {home.name} or inside it: archive the homes somewhere else"
            )
    out = archive.archive_homes(homes, destination, progress_file=sys.stderr)
    rate = out.bytes_read / out.seconds if out.seconds else 0
    print(
        f"{count(len(out.archived), 'home')} archived and verified "
        f"({_size(out.bytes_read)} of files into {_size(out.archive_bytes)}, {_size(rate)}/s), "
        f"{len(out.skipped)} verified before and unchanged, {len(out.failed)} failed; "
        f"manifest: {destination}/manifest.json"
    )
    for home, why in out.failed:
        print(f"  {home}: NOT archived: {why}", file=sys.stderr)
    if absent:
        print(
            f"{count(len(absent), 'home claim')} of namespace {args.namespace} not found under "
            f"{args.homes}, NOT archived: {', '.join(absent)} (mount them there and run again)",
            file=sys.stderr,
        )
    return 1 if out.failed or absent else 0


def _coverage(args, destination):
    """(homes, Coverage) for what --namespace or --homes names (default: what the manifest holds)."""
    manifest = archive.load_manifest(destination)
    fingerprints = None
    if args.namespace:
        homes = [c.name for c in cluster.home_claims(args.namespace)]
        if args.homes:  # the claims mounted here: each must be unchanged since its archive
            fingerprints = {
                home: listing.fingerprint(listing.scan(args.homes / home))
                for home in homes
                if (args.homes / home).is_dir()
            }
    elif args.homes:
        found = archive.homes_in(args.homes)
        homes = [h.name for h in found]
        fingerprints = {h.name: listing.fingerprint(listing.scan(h.path)) for h in found}
    else:
        homes = list(manifest.records)
    return manifest, homes, coverage(homes, manifest, destination.sizes(), fingerprints)


def run_verify(args) -> int:
    destination = _destination(args)
    manifest, homes, cover = _coverage(args, destination)
    bad = [f"{home}: no verified archive" for home in cover.missing]
    bad += [f"{home}: {why}" for home, why in cover.damaged]
    unreadable = []
    if args.read:
        for home in cover.covered:
            record = manifest.records[home]
            try:
                with destination.open(record.archive) as stream:
                    _, sha256, size = tarball.read(stream, home)
            except (OSError, ValueError, EOFError, tarfile.TarError, zlib.error) as e:
                unreadable.append(f"{home}: {record.archive} cannot be read back: {e}")
                continue
            if (sha256, size) != (record.sha256, record.archive_bytes):
                unreadable.append(f"{home}: {record.archive} is not the archive verified (sha256 differs)")
    bad += unreadable
    for line in bad:
        print(line, file=sys.stderr)
    covered = len(cover.covered) - len(unreadable)
    print(f"{covered} of {count(len(homes), 'home')} covered by verified archives in {destination}")
    return 1 if bad else 0


def run_restore(args) -> int:
    destination = _destination(args)
    record = archive.load_manifest(destination).records.get(args.home)
    name = record.archive if record else archive_name(args.home)
    with destination.open(name) as stream:
        made = tarball.restore(stream, args.home, args.into)
    print(f"{args.home}: {count(made, 'entry', 'entries')} restored into {args.into}")
    return 0


def run_delete(args) -> int:
    if not args.namespace and not args.homes:
        raise ValueError(
            "give --namespace (delete its home claims; with --homes where they are mounted, each "
            "is also checked unchanged) or --homes alone (delete home directories)"
        )
    if not args.destination and not args.i_have_no_archive:
        raise ValueError(
            "give --archive DEST, where `homes archive` wrote the archives and their manifest "
            "(or --i-have-no-archive, and their work is lost)"
        )
    destination = _destination(args) if args.destination else None
    if destination is not None:
        _, homes, cover = _coverage(args, destination)
    else:
        homes, cover = [h.name for h in archive.homes_in(args.homes)] if args.homes else [], None
        if args.namespace:
            homes = [c.name for c in cluster.home_claims(args.namespace)]
    in_use = cluster.claims_in_use(args.namespace) if args.namespace else {}
    decision = may_delete(homes, cover, in_use, args.i_have_no_archive)
    if not decision.allowed:
        print(f"refused: nothing deleted ({AFTERWARDS}):", file=sys.stderr)
        for reason in decision.reasons:
            print(f"  {reason}", file=sys.stderr)
        return 1
    where = f"namespace {args.namespace}" if args.namespace else str(args.homes)
    if not args.yes:
        print(
            f"would delete {count(len(homes), 'home')} in {where}: {', '.join(homes)} (add --yes to delete)"
        )
        return 0
    for home in homes:
        if args.namespace:
            cluster.delete_claim(args.namespace, home)
        else:
            shutil.rmtree(args.homes / home)
    print(f"deleted {count(len(homes), 'home')} in {where}")
    return 0
