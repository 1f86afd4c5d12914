# shellcheck shell=bash
# lib.sh - how deploy.sh runs commands: every command is traced as "+ <shell-quoted command>"
# (stdout in dry-run, stderr otherwise) on file descriptor 3, so tracing also works inside
# $(...). In dry-run nothing runs: lookups print a placeholder, existence checks answer "no"
# (or "yes" with --assume-existing). Reads DRY_RUN and ASSUME_EXISTING. Then the checks every
# option goes through (require_match, require_int).

die() {
  printf 'deploy.sh: error: %s\n' "$*" >&2
  exit 2
}

warn() {
  printf 'deploy.sh: warning: %s\n' "$*" >&2
}

# quote_word WORD: sets REPLY to WORD, single-quoted unless it is plainly safe.
quote_word() {
  local safe='^[A-Za-z0-9_@%+=:,./-]+$'
  if [[ "$1" =~ $safe ]]; then
    REPLY="$1"
  else
    REPLY="'${1//\'/\'\\\'\'}'"
  fi
}

# quote ARG...: shell-quote a command line; "--flag=value" keeps the flag
# bare and quotes only the value, e.g. --format='value(name)'.
quote() {
  local arg out=()
  local flag_re='^(--[A-Za-z0-9-]+=)(.*)$'
  for arg in "$@"; do
    if [[ "$arg" =~ $flag_re ]]; then
      local flag="${BASH_REMATCH[1]}"
      quote_word "${BASH_REMATCH[2]}"
      out+=("$flag$REPLY")
    else
      quote_word "$arg"
      out+=("$REPLY")
    fi
  done
  printf '%s' "${out[*]}"
}

# start_trace: the trace on stdout in a dry run, opened by what the placeholders mean; on
# stderr otherwise.
start_trace() {
  if ((DRY_RUN == 0)); then
    exec 3>&2
    return 0
  fi
  exec 3>&1
  printf '# deploy.sh --dry-run: nothing is executed; placeholders stand for looked-up values.\n'
  if ((ASSUME_EXISTING == 1)); then
    printf '# Existence checks ("# exists?") are assumed to succeed (re-run); an earlier\n'
    printf '# invoker %s stands for members no longer asked for.\n' "$DROPPED_INVOKER_PLACEHOLDER"
  else
    printf '# Existence checks ("# exists?") are assumed to fail (fresh project).\n'
  fi
  printf '# Newest enabled secret versions are shown as 1.\n'
}

trace() { # [-n NOTE] CMD...
  local note=""
  if [[ "$1" == "-n" ]]; then
    note="  # $2"
    shift 2
  fi
  printf '+ %s%s\n' "$(quote "$@")" "$note" >&3
}

section() {
  printf '\n# --- %s\n' "$*" >&3
}

# run CMD...: a command that changes something.
run() {
  trace "$@"
  ((DRY_RUN == 1)) || "$@"
}

# run_retry CMD...: like run, retried a few times. IAM bindings that name a
# service account created seconds ago can fail until it has propagated.
run_retry() {
  trace "$@"
  ((DRY_RUN == 1)) && return 0
  local attempt
  for attempt in 1 2 3 4 5; do
    "$@" && return 0
    ((attempt < 5)) || break
    warn "attempt $attempt failed; retrying in $((attempt * 5)) s"
    sleep $((attempt * 5))
  done
  die "command failed: $(quote "$@")"
}

# exists CMD...: true if the (read-only) command succeeds. In dry-run it is
# only printed and answers "no" (or "yes" with --assume-existing).
exists() {
  trace -n "exists?" "$@"
  if ((DRY_RUN == 1)); then
    ((ASSUME_EXISTING == 1))
    return
  fi
  "$@" >/dev/null 2>&1
}

# capture PLACEHOLDER CMD...: print the (read-only) command's stdout. In
# dry-run the command is only printed and PLACEHOLDER is returned instead.
capture() {
  local placeholder="$1"
  shift
  trace "$@"
  if ((DRY_RUN == 1)); then
    printf '%s\n' "$placeholder"
    return 0
  fi
  "$@"
}

# if_existing VALUE: VALUE with --assume-existing, else nothing (placeholder
# for lookups that find nothing on a fresh project).
if_existing() {
  if ((ASSUME_EXISTING == 1)); then
    printf '%s' "$1"
  fi
}

require_match() { # NAME VALUE REGEX HINT
  [[ "$2" =~ $3 ]] || die "invalid $1: '$2' ($4)"
}

require_int() { # NAME VALUE MIN MAX
  [[ "$2" =~ ^(0|[1-9][0-9]{0,8})$ ]] || die "invalid $1: '$2' (expected a whole number)"
  (("$2" >= $3 && "$2" <= $4)) || die "invalid $1: $2 (expected $3..$4)"
}

# duration_seconds DURATION: the seconds of e.g. 90s, 10m, 36h or 7d (a checked DURATION).
duration_seconds() {
  local count="${1%[smhd]}"
  case "${1: -1}" in
    s) printf '%s' "$count" ;;
    m) printf '%s' "$((count * 60))" ;;
    h) printf '%s' "$((count * 3600))" ;;
    *) printf '%s' "$((count * 86400))" ;;
  esac
}
