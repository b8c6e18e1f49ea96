#!/usr/bin/env bash
# The test command: bash tests/run.sh [pytest args...]
#
# Installs what is missing (Debian's victoria-metrics and influxdb, the
# package with its test extras), then runs ruff, mypy and pytest. Safe to
# run again and again; on a machine that has everything it installs nothing.
# Environment: PYTHON (default python3), REINSTALL=1 to force the pip step.
set -uo pipefail

cd "$(dirname "$0")/.."

section() { printf '\n==> %s\n' "$*"; }
die() {
    printf 'tests/run.sh: %s\n' "$*" >&2
    exit 1
}

# --- Debian packages: the real servers the tests start ------------------------
missing_pkgs=()
command -v victoria-metrics >/dev/null 2>&1 || missing_pkgs+=(victoria-metrics)
command -v influxd >/dev/null 2>&1 || missing_pkgs+=(influxdb)
# the HTML report is checked in a real headless browser
command -v chromium >/dev/null 2>&1 || missing_pkgs+=(chromium chromium-driver)

if ((${#missing_pkgs[@]})); then
    section "apt-get install ${missing_pkgs[*]}"
    if [[ $(id -u) == 0 ]]; then
        sudo=()
    elif command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        sudo=(none)
    fi
    if [[ ${sudo[0]:-} == none ]] || ! command -v apt-get >/dev/null 2>&1; then
        msg="cannot install ${missing_pkgs[*]} (needs apt-get and root or sudo)"
        [[ -n ${CI:-} ]] && die "$msg"
        printf '%s: the tests that need them will be skipped\n' "$msg" >&2
    else
        # The packages' maintainer scripts would start system-wide daemons;
        # the tests start their own, so forbid that while installing.
        made_policy=0
        if [[ ! -e /usr/sbin/policy-rc.d ]]; then
            printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null &&
                "${sudo[@]}" chmod 755 /usr/sbin/policy-rc.d && made_policy=1
        fi
        status=0
        "${sudo[@]}" apt-get update -qq || status=$?
        if ((status == 0)); then
            "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
                apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}" || status=$?
        fi
        if ((made_policy)); then
            "${sudo[@]}" rm -f /usr/sbin/policy-rc.d
        fi
        ((status == 0)) || die "apt-get failed to install ${missing_pkgs[*]}"
        command -v victoria-metrics >/dev/null && command -v influxd >/dev/null &&
            command -v chromium >/dev/null ||
            die "victoria-metrics, influxd or chromium still missing after apt-get install"
    fi
fi

# --- Python: the package and its test extras ----------------------------------
PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found"

# Debian's own python3 refuses pip installs (PEP 668): use a venv there.
if "$PYTHON" - <<'EOF'; then
import pathlib, sys, sysconfig
managed = pathlib.Path(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED").exists()
sys.exit(0 if managed and sys.prefix == sys.base_prefix else 1)
EOF
    if [[ ! -x .venv/bin/python ]]; then
        section "python -m venv .venv"
        "$PYTHON" -m venv .venv || die "cannot create .venv (apt-get install python3-venv)"
    fi
    PYTHON=.venv/bin/python
fi

# Exit 0 when this checkout is installed with every requirement of '.[test]'.
installed() {
    "$PYTHON" - <<'EOF'
import importlib.metadata as md
import importlib.util
import pathlib
import sys
import tomllib

try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement

project = tomllib.loads(pathlib.Path("pyproject.toml").read_text())["project"]
wanted = [*project.get("dependencies", []), *project.get("optional-dependencies", {}).get("test", [])]
for text in wanted:
    req = Requirement(text)
    if req.marker is not None and not req.marker.evaluate():
        continue
    try:
        version = md.version(req.name)
    except md.PackageNotFoundError:
        sys.exit(f"missing {req}")
    if not req.specifier.contains(version, prereleases=True):
        sys.exit(f"{req.name} {version} does not satisfy {req}")
spec = importlib.util.find_spec(project["name"])
here = pathlib.Path(project["name"]).resolve()
if spec is None or spec.origin is None or pathlib.Path(spec.origin).resolve().parent != here:
    sys.exit(f"{project['name']} is not installed from this checkout")
if md.version(project["name"]) != project["version"]:
    sys.exit(f"{project['name']} metadata is stale")
EOF
}

if [[ -n ${REINSTALL:-} ]] || ! why=$(installed 2>&1); then
    section "pip install -e '.[test]' (${why:-REINSTALL set})"
    "$PYTHON" -m pip install -q --disable-pip-version-check -e '.[test]' ||
        die "pip install -e '.[test]' failed"
fi

# --- checks: run them all, fail if any failed ---------------------------------
failed=()
check() {
    local name=$1
    shift
    section "$name"
    "$@" || failed+=("$name")
}

check "ruff check" "$PYTHON" -m ruff check .
check "ruff format --check" "$PYTHON" -m ruff format --check .
check "mypy multivac" "$PYTHON" -m mypy multivac
check "pytest" "$PYTHON" -m pytest -q "$@"

if ((${#failed[@]})); then
    printf -v joined '%s, ' "${failed[@]}"
    printf '\ntests/run.sh: failed: %s\n' "${joined%, }" >&2
    exit 1
fi
