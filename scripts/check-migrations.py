#!/usr/bin/env python3
"""Repository check for migrations (run by .ci/run).

    scripts/check-migrations.py [--base REV]     check the change since REV
    scripts/check-migrations.py --self-test      prove the checks catch what they should

A change may add at most one migration per backend, must never edit or delete an existing one,
and may not contain destructive statements (DROP TABLE/COLUMN, column type changes, SET NOT NULL,
ADD COLUMN ... NOT NULL without DEFAULT) unless the migration carries a line
`-- agora:allow-destructive <reason>`.

REV defaults to origin/main when that exists, else the previous commit (HEAD~1).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

BACKENDS = ("postgres", "sqlite")
ALLOW = re.compile(r"^\s*--\s*agora:allow-destructive\s+\S", re.MULTILINE)
DESTRUCTIVE = [
    (re.compile(r"\bDROP\s+TABLE\b", re.I), "DROP TABLE"),
    (re.compile(r"\bDROP\s+COLUMN\b", re.I), "DROP COLUMN"),
    (re.compile(r"\bALTER\s+COLUMN\s+\S+\s+(SET\s+DATA\s+)?TYPE\b", re.I), "a column type change"),
    (re.compile(r"\bSET\s+NOT\s+NULL\b", re.I), "SET NOT NULL on an existing column"),
    (re.compile(r"\bRENAME\s+(COLUMN|TO)\b", re.I), "a rename (breaks the running release)"),
]
ADD_NOT_NULL = re.compile(r"\bADD\s+COLUMN\b[^;]*\bNOT\s+NULL\b[^;]*;", re.I | re.S)


def git(repo, *args):
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, text=True).stdout


def strip_comments(sql):
    return re.sub(r"--[^\n]*", "", sql)


def destructive(sql):
    body = strip_comments(sql)
    found = [name for pattern, name in DESTRUCTIVE if pattern.search(body)]
    for stmt in ADD_NOT_NULL.findall(body):
        if not re.search(r"\bDEFAULT\b", stmt, re.I):
            found.append("ADD COLUMN ... NOT NULL without DEFAULT")
    return found


def check(repo, base):
    problems = []
    diff = git(repo, "diff", "--name-status", "--no-renames", f"{base}..HEAD", "--", "migrations")
    added = {b: set() for b in BACKENDS}
    for line in diff.splitlines():
        status, path = line.split("\t", 1)
        parts = path.split("/")
        if len(parts) < 3 or parts[1] not in BACKENDS:
            continue
        backend, folder = parts[1], parts[2]
        if status == "A":
            added[backend].add(folder)
        elif status in ("M", "D"):
            verb = "edits" if status == "M" else "deletes"
            problems.append(f"{path}: the change {verb} an existing migration; add a new one instead")
    for backend, folders in added.items():
        if len(folders) > 1:
            problems.append(f"migrations/{backend}: the change adds {len(folders)} migrations ({', '.join(sorted(folders))}); add at most one")
        for folder in sorted(folders):
            up = os.path.join(repo, "migrations", backend, folder, "up.sql")
            try:
                sql = open(up, encoding="utf-8").read()
            except OSError as e:
                problems.append(f"{up}: {e}")
                continue
            hits = destructive(sql)
            if hits and not ALLOW.search(sql):
                problems.append(
                    f"migrations/{backend}/{folder}/up.sql: destructive ({', '.join(hits)}); "
                    "add '-- agora:allow-destructive <reason>' if this is the contract step"
                )
    return problems


def default_base(repo):
    for rev in ("origin/main", "HEAD~1"):
        if subprocess.run(["git", "-C", repo, "rev-parse", "--verify", "-q", rev], capture_output=True).returncode == 0:
            return rev
    return None


def self_test():
    with tempfile.TemporaryDirectory() as repo:
        def commit(files, message):
            for path, text in files.items():
                full = os.path.join(repo, path)
                if text is None:
                    os.remove(full)
                    continue
                os.makedirs(os.path.dirname(full), exist_ok=True)
                open(full, "w").write(text)
            git(repo, "add", "-A")
            git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message)
            return git(repo, "rev-parse", "HEAD").strip()

        git(repo, "init", "-q")
        both = lambda folder, sql: {f"migrations/{b}/{folder}/up.sql": sql for b in BACKENDS}
        base = commit(both("0001_a", "CREATE TABLE a (id INT);"), "one")
        cases = [
            ("one additive migration", both("0002_b", "ALTER TABLE a ADD COLUMN b TEXT;"), 0),
            ("two migrations", {**both("0002_b", "SELECT 1;"), **both("0003_c", "SELECT 1;")}, 2),
            ("an edit", both("0001_a", "CREATE TABLE a (id BIGINT);"), 2),
            ("a drop", both("0002_b", "DROP TABLE a;"), 2),
            ("an allowed drop", both("0002_b", "-- agora:allow-destructive a is unused since v3\nDROP TABLE a;"), 0),
            ("NOT NULL without default", both("0002_b", "ALTER TABLE a ADD COLUMN n INT NOT NULL;"), 2),
            ("NOT NULL with default", both("0002_b", "ALTER TABLE a ADD COLUMN n INT NOT NULL DEFAULT 0;"), 0),
            ("a type change", both("0002_b", "ALTER TABLE a ALTER COLUMN id TYPE BIGINT;"), 2),
            ("a commented drop", both("0002_b", "-- DROP TABLE a was considered\nSELECT 1;"), 0),
        ]
        failures = 0
        for name, files, expected in cases:
            git(repo, "checkout", "-q", "-B", "case", base)
            commit(files, name)
            got = len(check(repo, base))
            ok = got == expected
            failures += not ok
            print(f"{'ok ' if ok else 'FAIL'} {name}: {got} problem(s), expected {expected}")
        print(f"{len(cases) - failures} passed, {failures} failed")
        return 1 if failures else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base")
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    base = args.base or default_base(repo)
    if base is None:
        print("check-migrations: no base revision (a single-commit repository); nothing to compare")
        return 0
    problems = check(repo, base)
    for p in problems:
        print(f"check-migrations: {p}", file=sys.stderr)
    print(f"check-migrations: {len(problems)} problem(s) since {base}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
