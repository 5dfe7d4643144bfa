"""Command line for the conformance kit (``python -m sextant.conformance`` / ``sextant conformance``)."""

from __future__ import annotations

import argparse
import json
import sys

from .checks import CHECKS, Target, run_checks


def _pairs(values: list[str] | None, flag: str) -> dict[str, str] | None:
    if values is None:
        return None
    out = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"{flag}: expected NAME=VALUE, got {item!r}")
        out[name] = value
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", required=True, help="HOST:PORT of the Suggestion service")
    parser.add_argument("--algorithm", required=True, help="algorithm name sent in the requests")
    parser.add_argument("--setting", action="append", metavar="NAME=VALUE",
                        help="algorithm setting for valid experiments (repeatable)")
    parser.add_argument("--invalid-setting", action="append", metavar="NAME=VALUE",
                        help="settings the service must reject with INVALID_ARGUMENT (repeatable)")
    parser.add_argument("--only", action="append", choices=sorted(CHECKS), help="run only these checks")
    parser.add_argument("--skip", action="append", choices=sorted(CHECKS), help="skip these checks")
    parser.add_argument("--token", help="bearer token, if the service requires one")
    parser.add_argument("--tls-ca", help="CA certificate: connect with TLS")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per call (Katib: 60)")
    parser.add_argument("--multi-objective", action="store_true",
                        help="the service optimises the objectives sextant.io/objectives declares (runs that check)")
    parser.add_argument("--json", action="store_true", help="print results as JSON")


def run(args: argparse.Namespace) -> int:
    try:
        target = Target(args.target, args.algorithm, settings=_pairs(args.setting, "--setting"),
                        invalid_settings=_pairs(args.invalid_setting, "--invalid-setting"),
                        token=args.token, tls_ca=args.tls_ca, timeout=args.timeout,
                        multi_objective=args.multi_objective)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    results = run_checks(target, only=args.only, skip=args.skip)
    if args.json:
        print(json.dumps([r.__dict__ for r in results], indent=2))
    else:
        for r in results:
            mark = "SKIP" if r.skipped else "PASS" if r.passed else "FAIL"
            print(f"{mark:4}  {r.name:18} {r.seconds * 1000:8.1f} ms  {r.detail}")
        failed = sum(not r.passed for r in results)
        print(f"{len(results) - failed}/{len(results)} checks passed for {args.algorithm} at {args.target}")
    return 0 if all(r.passed for r in results) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sextant conformance",
                                     description="Check a Katib Suggestion service against the contract")
    add_arguments(parser)
    return run(parser.parse_args(argv))
