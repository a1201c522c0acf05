"""The home-setup script: copy the quickstart README into the home, link ``~/shared``.

It runs as the Kubernetes postStart hook (``sh -c SCRIPT``) and, for the local twin, before the
server starts. It is POSIX ``sh`` (no bash, no python in the image needed), idempotent, always
exits 0 (a failing postStart kills the container), never overwrites what a user changed, and
logs what it did to ``~/.workshop/setup.log``.

The script text is a constant: every value reaches it through environment variables, so no
user-controlled text is ever interpolated into shell code.
"""

from __future__ import annotations

# Environment variables the script reads (all optional).
ENV_README_SOURCE = "WORKSHOP_README_SOURCE"  # file to copy, e.g. the mounted ConfigMap
ENV_README_NAME = "WORKSHOP_README_NAME"  # name in the home, default README.md
ENV_SHARED_DIR = "WORKSHOP_SHARED_DIR"  # read-only shared data mount -> ~/shared
ENV_SHARED_RW_DIR = "WORKSHOP_SHARED_RW_DIR"  # writable mount (instructors) -> ~/shared-readwrite

SCRIPT = r"""
home=${HOME:-/home/jovyan}
state="$home/.workshop"
log="$state/setup.log"
mkdir -p "$state" 2>/dev/null

say() {
  printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ 2>/dev/null)" "$*" >>"$log" 2>/dev/null
}

sum_of() {
  cksum <"$1" 2>/dev/null
}

# copy_if_ours SRC DEST STAMP: write DEST from SRC unless DEST holds someone else's edits.
# STAMP remembers the checksum of what we last wrote to DEST. Returns 1 if DEST was left alone.
copy_if_ours() {
  if [ ! -e "$2" ] && [ ! -L "$2" ]; then
    :
  elif [ -f "$2" ] && [ ! -L "$2" ] && [ "$(sum_of "$2")" = "$(cat "$3" 2>/dev/null)" ]; then
    :
  else
    return 1
  fi
  if cp "$1" "$2.workshop-tmp" 2>/dev/null && mv -f "$2.workshop-tmp" "$2" 2>/dev/null; then
    sum_of "$2" >"$3" 2>/dev/null
    return 0
  fi
  rm -f "$2.workshop-tmp" 2>/dev/null
  say "could not write $2"
  return 2
}

setup_readme() {
  src=${WORKSHOP_README_SOURCE:-}
  name=${WORKSHOP_README_NAME:-README.md}
  [ -n "$src" ] || return 0
  if [ ! -f "$src" ]; then
    say "README source $src not found; nothing copied"
    return 0
  fi
  case "$name" in
    */* | "" | . | ..) say "README name must be a plain file name; nothing copied"; return 0 ;;
  esac
  dest="$home/$name"
  case "$name" in
    *.*) beside="$home/${name%.*}-updated.${name##*.}" ;;
    *) beside="$home/$name-updated" ;;
  esac
  if [ "$(sum_of "$src")" = "$(cat "$state/readme.sum" 2>/dev/null)" ] && [ -e "$dest" ]; then
    say "README is up to date"
    return 0
  fi
  copy_if_ours "$src" "$dest" "$state/readme.sum"
  case $? in
    0) say "copied the workshop README to $dest" ;;
    1)
      if [ "$(sum_of "$src")" = "$(sum_of "$dest")" ]; then
        say "README matches the workshop version"
      elif copy_if_ours "$src" "$beside" "$state/readme-updated.sum"; then
        say "$dest has your changes; the new workshop version is in $beside"
      else
        say "$dest and $beside have your changes; left both alone"
      fi
      ;;
  esac
}

# link NAME TARGET: ~/NAME -> TARGET if TARGET exists and ~/NAME is free.
link() {
  [ -n "$2" ] || return 0
  if [ ! -d "$2" ]; then
    say "$2 is not mounted; no ~/$1 link"
    return 0
  fi
  if [ -L "$home/$1" ] && [ "$(readlink "$home/$1")" = "$2" ]; then
    say "~/$1 already links to $2"
  elif [ -e "$home/$1" ] || [ -L "$home/$1" ]; then
    say "~/$1 exists and is yours; not replaced"
  elif ln -s "$2" "$home/$1" 2>/dev/null; then
    say "linked ~/$1 to $2"
  else
    say "could not create ~/$1"
  fi
}

setup_readme
link shared "${WORKSHOP_SHARED_DIR:-}"
link shared-readwrite "${WORKSHOP_SHARED_RW_DIR:-}"

# keep the log small
if [ -f "$log" ]; then
  tail -n 200 "$log" >"$log.tmp" 2>/dev/null && mv -f "$log.tmp" "$log" 2>/dev/null
fi
exit 0
"""


def command() -> list[str]:
    """The exec command that runs the script (for postStart or a local subprocess)."""
    return ["sh", "-c", SCRIPT]


def environment(
    readme_source: str | None = None,
    readme_name: str = "README.md",
    shared_dir: str | None = None,
    shared_rw_dir: str | None = None,
) -> dict[str, str]:
    """The environment variables the script reads, for the given setup."""
    env = {ENV_README_NAME: readme_name}
    if readme_source:
        env[ENV_README_SOURCE] = readme_source
    if shared_dir:
        env[ENV_SHARED_DIR] = shared_dir
    if shared_rw_dir:
        env[ENV_SHARED_RW_DIR] = shared_rw_dir
    return env
