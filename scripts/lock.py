#!/usr/bin/env python
"""Write or check the pinned lock files requirements/lock-<set>.txt (logic in mlsys.platform.devenv).

    python scripts/lock.py --write   regenerate every lock from the installed venv (after bash scripts/setup_env.sh)
    python scripts/lock.py --check   exit 1 when a lock is stale against settings.ini or scripts/setup_env.sh, when its
                                     pins are not the closure of its requirements (every dependency pinned within its
                                     specifier, read from the installed metadata; nothing extra), or when the
                                     Dockerfile's pip steps drifted from setup_env.sh's; offline, about a second
    python scripts/lock.py --check --env   the same, and exit 1 when this venv's packages differ from lock-ci.txt
                                           (a pin missing or at another version, or a package not in it)

The sets: `core` (settings.ini's requirements) and `ci` (every extra and explicit install of setup_env.sh). A lock
pins the installed closure of its set and records the SHA-256 of the requirement lines it was made from.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from mlsys.core import ConfigError, atomic_write_bytes
from mlsys.platform.devenv import check_closure, check_lock, compare_install_steps, format_lock, lock_drift, lock_sets, make_lock

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lock.py", description=__doc__.splitlines()[0])
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="regenerate the locks from this Python's installed packages")
    mode.add_argument("--check", action="store_true", help="verify that the locks and the Dockerfile are current")
    p.add_argument("--env", action="store_true", help="with --check: also fail when this venv differs from the CI lock")
    p.add_argument("--root", type=Path, default=ROOT, help="the repository root (default: this script's)")
    args = p.parse_args(argv)
    root, t0 = args.root, time.perf_counter()
    settings, setup_env, folder = root / "settings.ini", root / "scripts" / "setup_env.sh", root / "requirements"
    problems = []
    try:
        for name, lock_set in lock_sets(setup_env).items():
            path = folder / f"lock-{name}.txt"
            if args.write:
                lock = make_lock(lock_set, settings)
                folder.mkdir(exist_ok=True)
                atomic_write_bytes(path, format_lock(lock).encode())
                print(f"wrote {path.relative_to(root)}: {len(lock.pins)} packages")
                continue
            try:
                status = check_lock(path, settings, lock_set)
                closure = check_closure(path, settings, lock_set)  # every pin, the dependencies' too
                print(f"{path.relative_to(root)}: current ({len(status.table)} requirements of core"
                      f"{f' and {len(lock_set.groups)} extras' if lock_set.groups else ''} pinned within their specifiers; "
                      f"its {len(closure)} pins are their closure)")
                if args.env and name == "ci":
                    drift = lock_drift(path)
                    if len(drift):
                        problems.append(f"this venv differs from {path.relative_to(root)} in {len(drift)} package(s):\n  "
                                        + drift.head(20).to_string(index=False).replace("\n", "\n  "))
                    else:
                        print(f"{sys.prefix}: every pin of {path.relative_to(root)} is installed at its version")
            except ConfigError as e:
                problems.append(str(e))
        if args.check:
            try:
                steps = compare_install_steps(root / "Dockerfile", setup_env)
                print(f"Dockerfile: the same {len(steps)} pip steps as scripts/setup_env.sh")
            except ConfigError as e:
                problems.append(str(e))
    except ConfigError as e:
        problems.append(str(e))
    for problem in problems:
        print(f"lock.py: error: {problem}", file=sys.stderr)
    print(f"{'write' if args.write else 'check'}: {time.perf_counter() - t0:.2f} s")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
