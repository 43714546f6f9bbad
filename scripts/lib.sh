# Shared settings for scripts/setup-env and scripts/run (sourced, not executed).
#
# Two kinds of environment hold movierec's dependencies:
#   native  a venv in the checkout (.venv), for hosts whose glibc is >= 2.39 and Python 3.11-3.13;
#   rootfs  a Debian 13 root filesystem with Python 3.13 and a venv inside (/opt/venv), for older hosts.
#           ml-metadata and tensorflow-data-validation 1.21 ship only manylinux_2_39 wheels, so TFX
#           cannot load on e.g. Debian 12 (glibc 2.36) without it.
# MOVIEREC_ENV=native|rootfs overrides the choice.

MOVIEREC_CHECKOUT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MOVIEREC_CACHE=${MOVIEREC_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/movierec}
MOVIEREC_LOCK=$MOVIEREC_CHECKOUT/requirements/lock.txt
# Inside the root filesystem the checkout is also mounted here, so the editable install of the
# project is valid for every checkout that shares the cached root filesystem.
MOVIEREC_SRC_IN_ROOTFS=/src/movierec
MOVIEREC_DEBIAN_SUITE=trixie

die() { echo "movierec: $*" >&2; exit 1; }

glibc_at_least() {  # glibc_at_least 2 39
  local v; v=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}') || return 1
  [ -n "$v" ] || return 1
  local major=${v%%.*} minor=${v#*.}; minor=${minor%%.*}
  [ "$major" -gt "$1" ] || { [ "$major" -eq "$1" ] && [ "$minor" -ge "$2" ]; }
}

native_python_ok() {
  python3 -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 13) else 1)' 2>/dev/null
}

env_kind() {
  case "${MOVIEREC_ENV:-auto}" in
    native|rootfs) echo "$MOVIEREC_ENV" ;;
    auto) if glibc_at_least 2 39 && native_python_ok; then echo native; else echo rootfs; fi ;;
    *) die "MOVIEREC_ENV must be native, rootfs or auto, not '$MOVIEREC_ENV'" ;;
  esac
}

# Bump when scripts/setup-env changes what it builds, so every machine rebuilds its environment.
MOVIEREC_ENV_RECIPE=1

# An environment is keyed by what goes into it: the locked dependency set and the recipe.
env_key() {
  { cat "$MOVIEREC_LOCK"; echo "recipe $MOVIEREC_ENV_RECIPE"; } | sha256sum | cut -c1-12
}

rootfs_dir() { echo "$MOVIEREC_CACHE/rootfs-$MOVIEREC_DEBIAN_SUITE-$(env_key)"; }

# The editable install depends on setup.py only; re-done when it changes.
project_stamp() { echo ".movierec-project-$(sha256sum "$MOVIEREC_CHECKOUT/setup.py" | cut -c1-12)"; }

# Runs "$@" inside the root filesystem $1 in a private mount namespace: no mount outlives it.
# The checkout, ../shared and the data cache appear at the same paths as outside.
in_rootfs() {
  local root=$1; shift
  local binds=("$MOVIEREC_CHECKOUT" "$MOVIEREC_CACHE/data")
  local shared; shared=$(cd "$MOVIEREC_CHECKOUT/.." && pwd)/shared
  [ -d "$shared" ] && binds+=("$shared")
  local extra
  IFS=: read -r -a extra <<< "${MOVIEREC_RUN_BIND:-}"
  for p in "${extra[@]}"; do [ -n "$p" ] && binds+=("$(realpath "$p")"); done
  mkdir -p "$MOVIEREC_CACHE/data"
  # Only these variables cross into the root filesystem; the host's PATH, PIP_* and Python
  # settings would point at things that do not exist there.
  local pass=(HOME=/root LANG=C.UTF-8 LC_ALL=C.UTF-8 PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin
              MOVIEREC_DATA_DIR="${MOVIEREC_DATA_DIR:-$MOVIEREC_CACHE/data}"
              MOVIEREC_IN_ROOTFS=1
              TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}")
  local name
  for name in $(compgen -e); do
    case "$name" in
      MOVIEREC_DATA_DIR|MOVIEREC_IN_ROOTFS|TF_CPP_MIN_LOG_LEVEL) ;;
      MOVIEREC_*|CI|TERM|COLUMNS|LINES|TF_*|KERAS_*|PYTEST_*|CUDA_VISIBLE_DEVICES|OMP_NUM_THREADS)
        pass+=("$name=${!name}") ;;
    esac
  done
  local cwd=$PWD
  unshare --mount --propagation private -- bash -euc '
    root=$1; src=$2; checkout=$3; cwd=$4; nbinds=$5; npass=$6; shift 6
    mount --rbind /proc "$root/proc"; mount --rbind /sys "$root/sys"; mount --rbind /dev "$root/dev"
    for ((i = 0; i < nbinds; i++)); do
      mkdir -p "$root$1"; mount --bind "$1" "$root$1"; shift
    done
    mkdir -p "$root$src"; mount --bind "$checkout" "$root$src"
    vars=("${@:1:npass}"); shift "$npass"
    # Start where the caller is when that path exists inside, else at the checkout.
    exec chroot "$root" /usr/bin/env -i "${vars[@]}" bash -c \
      "cd \"\$0\" 2>/dev/null || cd \"$checkout\"; exec \"\$@\"" "$cwd" "$@"
  ' bash "$root" "$MOVIEREC_SRC_IN_ROOTFS" "$MOVIEREC_CHECKOUT" "$cwd" "${#binds[@]}" "${#pass[@]}" \
    "${binds[@]}" "${pass[@]}" "$@"
}
