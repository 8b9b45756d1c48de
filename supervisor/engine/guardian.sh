# The guardian: if the master dies (even by SIGKILL), kill everything it still owned and say so in status.json.
#
# Plain POSIX sh instead of a second Python interpreter, run by guardian_link.py as
#   sh guardian.sh STATUS_JSON DIED_RECORD MASTER_PID
# The guardian proper is a fork of that sh: it prints the fork's pid on stdout and exits, and the master watches
# the fork through a pidfd. A fork maps only the pages of sh and libc it touches from then on (the start-up's
# dynamic linking stays behind in the parent), so it costs about 0.8 MiB of RSS where a fresh sh costs 1.6.
# It reads lines from the master on stdin:
#   g+ N / g- N   a process group the master started / ended
#   p+ N / p- N   a process the master tracks outside those groups (subreaper mode) / reaped
#   c PATH        the fleet's cgroup: cgroup.kill on it ends every instance's cgroup at once
#   m VAR=VALUE   the marker in every bot's environment: at death, any process still carrying it is killed
#   =             forget everything (the master sends its whole list next)
#   bye           a clean shutdown: exit and touch nothing
# EOF without "bye" means the master is gone. Then: SIGKILL every group, pid, the cgroup and marked process,
# and write DIED_RECORD (status.json's JSON without its last value and brace) with the time into STATUS_JSON,
# if status.json still names this master in a live state (not another master, not its own "error").

trap '' INT TERM HUP
status=$1 record=$2 master=$3
C='' M=''

guard() {
# One variable per group (g_N) and pid (p_N): set and unset are O(1) where a list in one string is not.
while IFS= read -r line; do
    op=${line%% *} arg=${line#* }
    case $op in
        g+|g-|p+|p-) case $arg in ''|*[!0-9]*) continue ;; esac ;;
    esac
    case $op in
        g+) eval "g_$arg=1" ;;
        p+) eval "p_$arg=1" ;;
        g-) unset "g_$arg" ;;
        p-) unset "p_$arg" ;;
        c) C=$arg ;;
        m) M=$arg ;;
        =) for v in $(set | sed -n 's/^\([gp]_[0-9]*\)=.*/\1/p'); do unset "$v"; done ;;  # rare: forks are fine
        bye) exit 0 ;;
    esac
done

set | while IFS='=' read -r name _; do
    case $name in
        g_*) kill -9 "-${name#g_}" 2>/dev/null ;;
        p_*) kill -9 "${name#p_}" 2>/dev/null ;;
    esac
done
if [ -n "$C" ]; then
    echo 1 > "$C/cgroup.kill" 2>/dev/null
fi
if [ -n "$M" ]; then
    for f in $(grep -lzxF -- "$M" /proc/[0-9]*/environ 2>/dev/null); do
        p=${f#/proc/} p=${p%/environ}
        [ "$p" != "$$" ] && kill -9 "$p" 2>/dev/null
    done
fi
if [ -n "$status" ] && grep -q "\"pid\": *$master," "$status" 2>/dev/null &&
        grep -Eq '"state": *"(starting|running|stopping)"' "$status"; then
    tmp=$(mktemp "$status.XXXXXXXX") &&
        printf '%s%s}\n' "$record" "$(date +%s)" > "$tmp" && mv -f "$tmp" "$status"
fi
if [ -n "$C" ]; then
    # The killed processes leave their cgroups within moments; remove the (then empty) tree, deepest first.
    for i in 1 2 3 4 5 6 7 8 9 10; do
        for d in "$C"/*/; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
        rmdir "$C" 2>/dev/null && break
        sleep 0.2
    done
fi
exit 0
}

# An asynchronous list reads /dev/null unless told otherwise: fd 3 carries the master's pipe to the fork.
exec 3<&0
guard <&3 3<&- >/dev/null &
echo $!
