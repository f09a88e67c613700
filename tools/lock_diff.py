"""Compare a pip freeze with requirements/lock.txt, and summarise a pytest JUnit report.

    python tools/lock_diff.py LOCK FREEZE                  # which versions differ (make lock prints this)
    python tools/lock_diff.py LOCK FREEZE --junit J.xml    # ... and which tests broke (make upgrade-check)

With ``--junit`` the exit status is 1 when a test failed or errored, else 0. Standard library only: it runs in
any of the project's virtual environments.
"""

from __future__ import annotations

import argparse
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$")


def canonical(name: str) -> str:
    """PEP 503 normalised project name (``Jinja2`` and ``jinja2``, ``typing_extensions`` and ``typing-extensions``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> dict[str, tuple[str, str]]:
    """``canonical name -> (name as written, version)`` for every ``name==version`` line; comments are skipped."""
    pins = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _PIN.match(line)
        if not match:
            raise SystemExit(f"{path}:{number}: not a 'name==version' pin: {raw!r}")
        pins[canonical(match[1])] = (match[1], match[2])
    return pins


def version_changes(locked: dict, frozen: dict) -> dict[str, list[str]]:
    """The packages whose version changed, that were added, and that were removed, as printable lines."""
    changed = [f"{frozen[k][0]} {locked[k][1]} -> {frozen[k][1]}" for k in sorted(locked.keys() & frozen.keys())
               if locked[k][1] != frozen[k][1]]
    added = [f"{frozen[k][0]} {frozen[k][1]}" for k in sorted(frozen.keys() - locked.keys())]
    removed = [f"{locked[k][0]} {locked[k][1]}" for k in sorted(locked.keys() - frozen.keys())]
    return {"changed": changed, "added": added, "removed": removed}


def junit_summary(path: Path) -> tuple[dict[str, int], list[str]]:
    """Counts (passed, failed, errors, skipped) and ``test id: first line of the message`` of each broken test."""
    root = ET.parse(path).getroot()
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    broken = []
    for case in root.iter("testcase"):
        test_id = f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}"
        outcome = next((child for child in case if child.tag in ("failure", "error", "skipped")), None)
        if outcome is None:
            counts["passed"] += 1
            continue
        if outcome.tag == "skipped":
            counts["skipped"] += 1
            continue
        counts["failed" if outcome.tag == "failure" else "errors"] += 1
        message = (outcome.get("message") or outcome.text or "").strip().splitlines()
        broken.append(f"{test_id} ({outcome.tag}): {message[0][:200] if message else ''}")
    return counts, broken


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lock", type=Path)
    parser.add_argument("freeze", type=Path)
    parser.add_argument("--junit", type=Path, help="pytest --junitxml report of the run in that environment")
    args = parser.parse_args(argv)

    changes = version_changes(read_pins(args.lock), read_pins(args.freeze))
    total = sum(map(len, changes.values()))
    print(f"== versions: {args.freeze} against {args.lock}: {total} difference(s)")
    for kind, lines in changes.items():
        if lines:
            print(f"{kind} ({len(lines)}):")
            print("\n".join(f"  {line}" for line in lines))
    if args.junit is None:
        return 0
    if not args.junit.exists():
        print(f"== tests: no report at {args.junit} (pytest did not run to the end)")
        return 1
    counts, broken = junit_summary(args.junit)
    print("== tests: " + ", ".join(f"{n} {kind}" for kind, n in counts.items()))
    if broken:
        print(f"broke with these versions ({len(broken)}):")
        print("\n".join(f"  {line}" for line in broken))
        if total == 0:
            print("no version differs from the lock: these fail with the locked versions too, not after an upgrade")
    else:
        print("no test broke: `make lock UPGRADE=1` adopts these versions (then run `make test`)")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
