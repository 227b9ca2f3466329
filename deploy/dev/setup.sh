#!/usr/bin/env bash
# Brings a development or CI machine to the state Fog's demo and tests need,
# and does nothing that is already done:
#   - Debian packages: docker.io (engine), busybox-static (test images),
#     docker-registry (a real OCI registry on loopback for pull-by-digest tests),
#     e2fsprogs and mount (each job's size-limited disk), curl and python3
#     (the demo script), runsc (gVisor, registered with the engine);
#   - the Solidity toolchain from npm (contracts/package-lock.json);
#   - schemathesis from PyPI, pinned, in .fog/venv (the hub API fuzz run);
#   - a running Docker daemon (started in the background if its socket is absent);
#   - the local test images (tests/images/*), built FROM scratch with static busybox.
# Where it cannot install (not root, not Debian) it lists what is missing and
# how to get it, and exits 1.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
state_dir="${FOG_STATE_DIR:-$root/.fog}"
docker_log="$state_dir/dockerd.log"
test_image="fog-test/busybox:latest"

say() { printf '[setup] %s\n' "$*"; }
fail() {
  printf '[setup] error: %s\n' "$*" >&2
  exit 1
}

can_install() { [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; }

# ---- base tools that cannot be installed from here -------------------------
missing_tools=()
for tool in cargo node npm git tar; do
  command -v "$tool" >/dev/null 2>&1 || missing_tools+=("$tool")
done
if [ ${#missing_tools[@]} -gt 0 ]; then
  fail "missing ${missing_tools[*]}: install Rust (rustup, toolchain >= 1.94), Node.js >= 20 with npm, git and tar"
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || fail "Node.js $(node --version) is too old: Fog's contracts toolchain needs Node.js >= 20"

# ---- Debian packages ------------------------------------------------------
busybox_is_static() {
  [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1
}
packages=()
command -v dockerd >/dev/null 2>&1 || packages+=(docker.io)
command -v docker >/dev/null 2>&1 || packages+=(docker.io)
busybox_is_static || packages+=(busybox-static)
command -v docker-registry >/dev/null 2>&1 || packages+=(docker-registry)
command -v mkfifo >/dev/null 2>&1 || packages+=(coreutils)
# The miner gives each job a loop-mounted ext4 file system as its disk limit.
command -v mkfs.ext4 >/dev/null 2>&1 || packages+=(e2fsprogs)
command -v losetup >/dev/null 2>&1 || packages+=(mount)
# The demo script narrates with curl (health checks) and python3 (amounts, JSON).
command -v curl >/dev/null 2>&1 || packages+=(curl)
command -v python3 >/dev/null 2>&1 || packages+=(python3)
# gVisor: miners can run jobs under runsc, a user-space kernel (tests use it for real).
command -v runsc >/dev/null 2>&1 || packages+=(runsc)
if [ ${#packages[@]} -gt 0 ]; then
  mapfile -t packages < <(printf '%s\n' "${packages[@]}" | sort -u)
  if can_install; then
    say "installing Debian packages: ${packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  else
    fail "missing packages: ${packages[*]}. As root on Debian/Ubuntu run: apt-get update && apt-get install -y ${packages[*]}"
  fi
fi

# ---- Solidity toolchain from npm ------------------------------------------
contracts="$root/contracts"
lock_sum="$(sha256sum "$contracts/package-lock.json" | cut -d' ' -f1)"
stamp="$contracts/node_modules/.fog-lock-sha256"
forge_bin="$contracts/node_modules/@foundry-rs/forge-linux-amd64/bin/forge"
anvil_bin="$contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
if [ ! -x "$forge_bin" ] || [ ! -x "$anvil_bin" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]; then
  say "installing the Solidity toolchain (npm install in contracts/)"
  # Not `npm ci`: forge and anvil list per-platform binaries as optional
  # dependencies and some are not published, so the lock file cannot record
  # them and `npm ci` refuses it. `install --no-save` installs what the lock
  # pins and leaves it untouched.
  (cd "$contracts" && npm install --no-save --no-audit --no-fund --loglevel=error)
  [ -x "$forge_bin" ] || fail "npm install finished but $forge_bin is missing (is this linux-amd64?)"
  echo "$lock_sum" >"$stamp"
fi

# ---- schemathesis (the hub API's schema-driven fuzz run) ---------------------
# Pinned in tests/schemathesis/requirements.txt, in a venv of its own.
st_venv="$state_dir/venv"
st_reqs="$root/tests/schemathesis/requirements.txt"
st_sum="$(sha256sum "$st_reqs" | cut -d' ' -f1)"
if [ ! -x "$st_venv/bin/st" ] || [ "$(cat "$st_venv/.fog-reqs-sha256" 2>/dev/null)" != "$st_sum" ]; then
  say "installing schemathesis (pip, into $st_venv)"
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    if can_install; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    else
      fail "python3 cannot make virtual environments: install python3-venv"
    fi
  fi
  mkdir -p "$state_dir"
  rm -rf "$st_venv"
  python3 -m venv "$st_venv"
  "$st_venv/bin/pip" install --quiet --disable-pip-version-check -r "$st_reqs"
  echo "$st_sum" >"$st_venv/.fog-reqs-sha256"
fi

# ---- Docker daemon ----------------------------------------------------------
docker_ready() { docker info >/dev/null 2>&1; }

# gVisor registered as the engine's runtime `runsc`. This machine kind's
# network namespaces make runsc refuse to start with its own network stack
# ("cannot run with network enabled in root network namespace"), so it is
# registered with --network=none: jobs under gVisor get no network here.
daemon_json=/etc/docker/daemon.json
register_runsc() {
  [ "$(id -u)" -eq 0 ] || return 0
  command -v runsc >/dev/null 2>&1 || return 0
  python3 - "$daemon_json" "$(command -v runsc)" <<'PY'
import json, os, sys
path, runsc = sys.argv[1], sys.argv[2]
config = {}
if os.path.exists(path):
    with open(path) as f:
        text = f.read().strip()
    config = json.loads(text) if text else {}
want = {"path": runsc, "runtimeArgs": ["--network=none"]}
if config.get("runtimes", {}).get("runsc") != want:
    config.setdefault("runtimes", {})["runsc"] = want
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
PY
}
register_runsc
if ! docker_ready; then
  [ "$(id -u)" -eq 0 ] || fail "the Docker daemon is not answering and only root can start it here: start it (e.g. 'sudo dockerd &' or 'sudo systemctl start docker') and run again"
  mkdir -p "$state_dir"
  pidfile=/var/run/docker.pid
  if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    say "removing stale $pidfile"
    rm -f "$pidfile"
  fi
  if [ -f "$pidfile" ]; then
    say "dockerd is starting (pid $(cat "$pidfile")); waiting for it"
  else
    say "starting dockerd (log: $docker_log)"
    nohup setsid dockerd >"$docker_log" 2>&1 </dev/null &
  fi
  for _ in $(seq 1 120); do
    docker_ready && break
    sleep 0.5
  done
  if ! docker_ready; then
    tail -n 20 "$docker_log" >&2 2>/dev/null || true
    fail "dockerd did not answer within 60 s (log above, full log in $docker_log)"
  fi
  say "docker daemon is up"
fi
# A daemon started before runsc was registered reloads its runtimes on SIGHUP.
if command -v runsc >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ] \
  && ! docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"'; then
  if [ -f /var/run/docker.pid ]; then
    say "registering gVisor (runsc) with the running docker daemon"
    kill -HUP "$(cat /var/run/docker.pid)"
    for _ in $(seq 1 20); do
      docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"' && break
      sleep 0.25
    done
  fi
  docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"' \
    || say "warning: the docker daemon does not list runsc; restart it to load $daemon_json"
fi

# ---- test images ------------------------------------------------------------
# Every directory under tests/images is an image fog-test/<dir>:latest, built
# FROM scratch with the static busybox copied into its context, and rebuilt
# when its Dockerfile or busybox changes.
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
mkdir -p "$state_dir"
for image_dir in "$root"/tests/images/*/; do
  image_dir="${image_dir%/}"
  image="fog-test/$(basename "$image_dir"):latest"
  want_label="$(cat "$image_dir/Dockerfile" /bin/busybox | sha256sum | cut -d' ' -f1)"
  have_label="$(docker image inspect --format '{{ index .Config.Labels "org.fog.source-sha256" }}' "$image" 2>/dev/null || true)"
  [ "$have_label" = "$want_label" ] && continue
  say "building $image (FROM scratch, static busybox)"
  rm -rf "${context:?}"/*
  cp "$image_dir/Dockerfile" "$context/Dockerfile"
  cp /bin/busybox "$context/busybox"
  if ! DOCKER_BUILDKIT=0 docker build --quiet --label "org.fog.source-sha256=$want_label" \
    -t "$image" "$context" >"$state_dir/image-build.log" 2>&1; then
    cat "$state_dir/image-build.log" >&2
    fail "building $image failed (output above)"
  fi
done
say "ready: docker $(docker version --format '{{.Server.Version}}'), forge $("$forge_bin" --version | head -1 | awk '{print $3}'), test image $(docker image inspect --format '{{.Id}}' "$test_image" | cut -c1-19)"
