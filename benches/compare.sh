#!/usr/bin/env bash
# Whole-command figures, side by side in one run: the engine against the equivalent bash script
# on the same work, and startup, plan size and large-output costs. Prints a Markdown table.
#
#   benches/compare.sh            # everything (needs ~3 GiB free in $TMPDIR for the 1 GiB cases)
#   QUICK=1 benches/compare.sh    # skip the 1 GiB cases
#
# Timings are medians of several runs; peak memory is the kernel's ru_maxrss of the process tree.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
export RUNBOOK="$PWD/target/release/runbook" REPO="$PWD"
work=$(mktemp -d "${TMPDIR:-/tmp}/runbook-compare.XXXXXX")
trap 'rm -rf "$work"' EXIT
export WORK="$work"
python3 - <<'PY'
import os, statistics, subprocess, sys, time, shutil

RB, REPO, WORK = os.environ["RUNBOOK"], os.environ["REPO"], os.environ["WORK"]
QUICK = os.environ.get("QUICK") == "1"
os.chdir(WORK)

def run(cmd, setup=None, env=None):
    """Runs cmd once; returns (seconds, peak RSS in KiB). `setup` runs first, untimed."""
    if setup:
        setup()
    e = dict(os.environ, CI="true", **(env or {}))
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=e, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    err = p.stderr.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    if code not in (0,):
        sys.exit(f"failed ({code}): {' '.join(cmd)}\n{err}")
    return dt, usage.ru_maxrss

def median(cmd, n, setup=None, env=None):
    results = [run(cmd, setup, env) for _ in range(n)]
    return statistics.median(r[0] for r in results), max(r[1] for r in results)

def write(name, text):
    with open(name, "w") as f:
        f.write(text)

def fresh_state():
    shutil.rmtree(".runbook", ignore_errors=True)

rows = []
def row(what, ours, base, target, cmd):
    ratio = f"{ours / base:.2f}×" if base else ""
    rows.append((what, ours, base, ratio, target, cmd))

N = 300
ROUNDS = 9
# 1-2. Steps at both durability levels against their floors, in interleaved rounds (one of each
# per round, so a change in the shared disk's speed touches all alike); medians per step.
write("exec.yaml", "runbook: 1\nname: exec-bench\nsteps:\n" + "".join(f"  - id: s{i}\n    exec: [/bin/true]\n" for i in range(N)))
write("exec.sh", "".join("/bin/true\n" for _ in range(N)))
os.makedirs("src", exist_ok=True)
for i in range(N):
    with open(f"src/f{i}", "wb") as f:
        f.write(os.urandom(1024))
write("copy.yaml", "runbook: 1\nname: copy-bench\nsteps:\n" + "".join(f"  - id: c{i}\n    copy: {{ from: src/f{i}, to: dst/f{i} }}\n" for i in range(N)))
write("copy.sh", "".join(f"cp src/f{i} dst/f{i}\n" for i in range(N)))
def fresh_dst():
    fresh_state()
    shutil.rmtree("dst", ignore_errors=True)
    os.makedirs("dst")

def sync_latency():
    """One fdatasync of a small append, as the journal does it: seconds, median of N."""
    fd = os.open("latency.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC)
    times = []
    for i in range(N):
        os.write(fd, b'{"type":"step_finished","step":"s%d"}\n' % i)
        t0 = time.perf_counter()
        os.fdatasync(fd)
        times.append(time.perf_counter() - t0)
    os.close(fd)
    return statistics.median(times)

def durable_copy_floor():
    """The floor of a durable copy, in-process: each 1 KiB file written to a temporary name and
    fdatasync'ed, renamed, its folder fsync'ed, a journal record appended and fdatasync'ed."""
    fresh_dst()
    os.makedirs(".runbook", exist_ok=True)
    journal = os.open(".runbook/floor.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    t0 = time.perf_counter()
    for i in range(N):
        with open(f"src/f{i}", "rb") as f:
            data = f.read()
        tmp = f"dst/.f{i}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.write(fd, data)
        os.fdatasync(fd)
        os.close(fd)
        os.rename(tmp, f"dst/f{i}")
        d = os.open("dst", os.O_RDONLY)
        os.fsync(d)
        os.close(d)
        os.write(journal, b'{"type":"step_finished","step":"c%d","outcome":"done"}\n' % i)
        os.fdatasync(journal)
    dt = time.perf_counter() - t0
    os.close(journal)
    return dt

cases = {
    "bash": lambda: run(["bash", "exec.sh"])[0],
    "exec full": lambda: run([RB, "-q", "run", "exec.yaml"], fresh_state)[0],
    "exec process": lambda: run([RB, "-q", "run", "exec.yaml"], fresh_state, {"RUNBOOK_DURABILITY": "process"})[0],
    "cp": lambda: run(["bash", "copy.sh"], fresh_dst)[0],
    "copy full": lambda: run([RB, "-q", "run", "copy.yaml"], fresh_dst)[0],
    "copy process": lambda: run([RB, "-q", "run", "copy.yaml"], fresh_dst, {"RUNBOOK_DURABILITY": "process"})[0],
    "copy floor": durable_copy_floor,
    "sync": lambda: sync_latency() * N,
}
samples = {k: [] for k in cases}
for _ in range(ROUNDS):
    for name, f in cases.items():
        samples[name].append(f() / N * 1e3)
m = {k: statistics.median(v) for k, v in samples.items()}
floor_exec = m["bash"] + m["sync"]
row(f"{N} exec steps of `/bin/true`, `--durability full` (journal synced) vs bash + one `fdatasync` a step ({m['bash']:.3f} + {m['sync']:.3f} ms), per step",
    m["exec full"], floor_exec, "≤ 1.15×", "runbook -q run exec.yaml")
row(f"{N} exec steps, `--durability process` vs bash, per step", m["exec process"], m["bash"], "≤ 1.0×",
    "RUNBOOK_DURABILITY=process runbook -q run exec.yaml / bash exec.sh")
row(f"{N} copy steps of 1 KiB, `--durability full` (verified, atomic, synced) vs the durable-copy floor, per step",
    m["copy full"], m["copy floor"], "≤ 1.1×", "runbook -q run copy.yaml / the floor in Python")
row(f"{N} copy steps of 1 KiB, `--durability process` (verified, atomic) vs `cp`, per step",
    m["copy process"], m["cp"], "≤ 0.2× (5× faster)", "RUNBOOK_DURABILITY=process runbook -q run copy.yaml / bash copy.sh")
row(f"{N} copy steps of 1 KiB, `--durability full` vs `cp` (which syncs nothing), per step", m["copy full"], m["cp"], "",
    "runbook -q run copy.yaml / bash copy.sh")
row(f"one `fdatasync` of a journal append (median of {N}), the disk's sync latency in this run", m["sync"], None, "", "os.fdatasync")
print("per-step medians over", ROUNDS, "interleaved rounds (ms):", {k: round(v, 3) for k, v in m.items()}, file=sys.stderr)

# 3. startup to exit: validate and plan of each shipped runbook.
site = os.path.join(WORK, "site.yaml")
write(site, "backup_dir: /nonexistent/backup\nbackup_file: /nonexistent/OfficeScanAuth.dat\nbuild: 8000\nexport_file: /nonexistent/export.pfx\n")
for name in sorted(os.listdir(f"{REPO}/runbooks/apex-one")):
    path = f"{REPO}/runbooks/apex-one/{name}"
    t, _ = median([RB, "validate", path], 21)
    row(f"`validate {name}` (startup to exit)", t * 1e3, None, "≤ 5 ms", f"runbook validate runbooks/apex-one/{name}")
    # plan exits 1 for a predicted failure: time it all the same.
    def plan_once():
        e = dict(os.environ, CI="true", RUNBOOK_INPUT_PASSWORD="pw")
        t0 = time.perf_counter()
        subprocess.run([RB, "plan", path, "--vars", site], env=e, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - t0
    t = statistics.median(plan_once() for _ in range(21))
    row(f"`plan {name}` (startup to exit)", t * 1e3, None, "≤ 5 ms", f"runbook plan runbooks/apex-one/{name} --vars site.yaml")

# 3b. validate of a 100-step runbook (startup to exit).
write("validate100.yaml", "runbook: 1\nname: v100\ninputs:\n  dir: { default: out }\nsteps:\n" + "".join(
    f"  - id: s{i}\n    copy: {{ from: '{{{{ dir }}}}/a{i}', to: '{{{{ dir }}}}/b{i}' }}\n" for i in range(100)))
t, _ = median([RB, "validate", "validate100.yaml"], 31)
row("`validate` of a 100-step runbook (startup to exit)", t * 1e3, None, "a few ms", "runbook validate validate100.yaml")

# 4. big plans: time and memory grow linearly.
for n in (1000, 10000, 20000):
    text = "runbook: 1\nname: big-plan\ninputs:\n  dir: { default: out }\nsteps:\n"
    for i in range(n):
        text += [f"  - id: s{i}\n    mkdir: '{{{{ dir }}}}/d{i}'\n",
                 f"  - id: s{i}\n    write: {{ path: '{{{{ dir }}}}/d{i-1}/f.txt', content: 'step {i}' }}\n",
                 f"  - id: s{i}\n    exec: [echo, '{i}']\n",
                 f"  - id: s{i}\n    when: steps.s{i-2}.status == 'done'\n    log: 'after {{{{ steps.s{i-3}.status }}}}'\n"][i % 4]
    write(f"plan{n}.yaml", text)
    t, rss = median([RB, "plan", f"plan{n}.yaml"], 3)
    row(f"`plan` of {n} steps (time; peak RSS {rss // 1024} MiB)", t * 1e3, None, "≤ 500 ms at 10,000", f"runbook plan plan{n}.yaml")

if not QUICK:
    # 5. a 1 GiB verified copy vs cp alone (and cp + sync, the same durability).
    with open("big.bin", "wb") as f:
        for _ in range(1024):
            f.write(os.urandom(1 << 20))
    write("bigcopy.yaml", "runbook: 1\nname: bigcopy\nsteps:\n  - id: c\n    copy: { from: big.bin, to: big.copy }\n")
    def clean_big():
        fresh_state()
        for p in ("big.copy", "big.cp"):
            if os.path.exists(p):
                os.remove(p)
        subprocess.run(["sync"])
    ours, _ = median([RB, "-q", "run", "bigcopy.yaml"], 3, clean_big)
    base, _ = median(["cp", "big.bin", "big.cp"], 3, clean_big)
    synced, _ = median(["sh", "-c", "cp big.bin big.cp && sync big.cp"], 3, clean_big)
    row("1 GiB copy, verified (SHA-256) and synced, vs `cp` alone", ours * 1e3, base * 1e3, "≤ 2.0×", "runbook -q run bigcopy.yaml / cp big.bin big.cp")
    row("  the same vs `cp && sync` (equal durability)", ours * 1e3, synced * 1e3, "", "sh -c 'cp big.bin big.cp && sync big.cp'")
    for p in ("big.bin", "big.copy", "big.cp"):
        if os.path.exists(p):
            os.remove(p)

    # 6. a command printing 1 GiB, checked by expect-output: time and peak memory.
    gen = "head -c 1073741824 /dev/zero | tr '\\\\0' x | fold -w 99; echo Certificate Authentication Manager has successfully"
    write("gib.yaml", "runbook: 1\nname: gib\nsteps:\n  - id: big\n    exec: [sh, -c, \"" + gen.replace('"', '\\"') + "\"]\n  - id: check\n    expect-output: { contains: Certificate Authentication Manager has successfully }\n")
    ours, rss = median([RB, "-q", "run", "gib.yaml"], 3, fresh_state)
    base, base_rss = median(["sh", "-c", gen.replace("\\\\", "\\") + " > /dev/null"], 3)
    row(f"exec printing 1 GiB + expect-output (peak RSS {rss // 1024} MiB, target ≤ 64 MiB) vs the generator alone", ours * 1e3, base * 1e3, "", "runbook -q run gib.yaml")

print(f"\nMachine: {os.cpu_count()} cores, {os.uname().sysname} {os.uname().release}, {time.strftime('%Y-%m-%d')}\n")
print("| what | runbook (ms) | baseline (ms) | ratio | target | command |")
print("|---|---:|---:|---:|---|---|")
for what, ours, base, ratio, target, cmd in rows:
    b = f"{base:.3f}" if base else ""
    print(f"| {what} | {ours:.3f} | {b} | {ratio} | {target} | `{cmd}` |")
PY
