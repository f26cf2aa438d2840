#!/usr/bin/env bash
# Runs a command and, while it runs, prints a line to stderr every
# PROGRESS_INTERVAL seconds (default 30) with the time, what the command is
# building right now, how long it has run and what a cold run took, so that
# a first `make demo` is never silent for minutes while Go compiles
# Kubernetes. "Building right now" is read from the command's descendant
# processes: each `go build` (by its -o name), `go get`/`go install`/
# `go run`, mmdebstrap, apt-get and gcc, and the packages the Go compiler
# is compiling at that moment. A command that ends before the first line is
# due (a warm run) prints only its own output; the command's exit status is
# the script's.
#
# Usage: progress.sh LABEL EXPECTED COMMAND [ARGS...]
#   LABEL     what the command does, e.g. "Kubernetes build and images"
#   EXPECTED  what a cold run took, e.g. "8.7 min cold"
set -uo pipefail
if [ $# -lt 3 ]; then
  echo "usage: progress.sh LABEL EXPECTED COMMAND [ARGS...] (got $# arguments)" >&2
  exit 2
fi
label=$1 expected=$2
shift 2
interval=${PROGRESS_INTERVAL:-30}
if ! [[ $interval =~ ^[1-9][0-9]*$ ]]; then
  echo "progress.sh: PROGRESS_INTERVAL=$interval is not a whole number of seconds >= 1" >&2
  exit 2
fi

fmt_elapsed() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# building PID: what the descendants of PID are building, one line. Reads
# /proc only (no ps: not every minimal Debian has procps).
building() {
  local root=$1 d pid stat rest p i j a o line=""
  local -A parent=()
  local -a what=() pkgs=() args=()
  for d in /proc/[0-9]*; do
    { read -r stat <"$d/stat"; } 2>/dev/null || continue
    rest=${stat##*) } # after the command name, which may hold spaces
    read -r _ p _ <<<"$rest"
    parent[${d#/proc/}]=$p
  done
  for pid in "${!parent[@]}"; do
    p=${parent[$pid]}
    while [ -n "$p" ] && [ "$p" != "$root" ] && [ "$p" -gt 1 ]; do p=${parent[$p]:-}; done
    [ "$p" = "$root" ] || continue
    { mapfile -d '' -t args <"/proc/$pid/cmdline"; } 2>/dev/null || continue
    for ((i = 0; i < ${#args[@]}; i++)); do
      a=${args[i]##*/}
      case $a in
        go)
          [ "${args[i + 1]:-}" = -C ] && i=$((i + 2)) # go -C DIR build ...
          case ${args[i + 1]:-} in
            build)
              o=${args[$((${#args[@]} - 1))]}
              for ((j = i + 2; j < ${#args[@]} - 1; j++)); do
                [ "${args[j]}" = -o ] && o=${args[j + 1]##*/} && o=${o%.tmp}
              done
              what+=("go build $o") ;;
            get | install) what+=("go ${args[i + 1]} ${args[$((${#args[@]} - 1))]##*/}") ;;
            run) what+=("go run ${args[*]:i+2:2}") ;;
          esac
          break ;;
        compile)
          for ((j = i + 1; j < ${#args[@]} - 1; j++)); do
            [ "${args[j]}" = -p ] && pkgs+=("${args[j + 1]}")
          done
          break ;;
        mmdebstrap) what+=("mmdebstrap (a Debian root filesystem)"); break ;;
        apt-get | gcc) what+=("$a"); break ;;
      esac
    done
  done
  if [ ${#what[@]} -gt 0 ]; then
    line=$(printf '%s\n' "${what[@]}" | sort -u | paste -sd, - | sed 's/,/, /g')
  fi
  if [ ${#pkgs[@]} -gt 0 ]; then
    line+="${line:+; }compiling $(printf '%s\n' "${pkgs[@]}" | sort -u | head -3 | paste -sd, - | sed 's/,/, /g')"
    [ ${#pkgs[@]} -gt 3 ] && line+=" and $((${#pkgs[@]} - 3)) more"
  fi
  printf '%s\n' "${line:-no build step (waiting or downloading)}"
}

start=$SECONDS
# The ticker runs beside the command, which stays in the foreground so that
# Ctrl-C reaches it as usual; the ticker checks every second that this
# shell is still there, so no line outlives it.
(
  # A read with a timeout on a pipe nobody writes to waits a second without
  # a sleep process, which would hold stderr open after the ticker is gone.
  exec {pause}<> <(:)
  next=$interval
  while kill -0 $$ 2>/dev/null; do
    read -r -t 1 -u "$pause"
    if [ $((SECONDS - start)) -ge "$next" ]; then
      printf '  … %s %s: %s so far (%s); now: %s\n' "$(date +%T)" "$label" \
        "$(fmt_elapsed $((SECONDS - start)))" "$expected" "$(building $$)" >&2
      next=$((next + interval))
    fi
  done
) &
ticker=$!
trap 'kill "$ticker" 2>/dev/null' EXIT
"$@"
rc=$?
kill "$ticker" 2>/dev/null
wait "$ticker" 2>/dev/null
took=$((SECONDS - start))
if [ "$took" -ge "$interval" ]; then
  printf '  … %s %s: done in %s (exit status %d)\n' "$(date +%T)" "$label" "$(fmt_elapsed "$took")" "$rc" >&2
fi
exit "$rc"
