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

N = 1000
# 1. exec steps: spawn, capture, journal (fdatasync per step) vs bash running the same program.
write("exec.yaml", "runbook: 1\nname: exec-bench\nsteps:\n" + "".join(f"  - id: s{i}\n    exec: [/bin/true]\n" for i in range(N)))
write("exec.sh", "".join("/bin/true\n" for _ in range(N)))
ours, _ = median([RB, "-q", "run", "exec.yaml"], 5, fresh_state)
base, _ = median(["bash", "exec.sh"], 5)
row(f"{N} exec steps of `/bin/true` (captured, journaled, synced) vs {N} lines in bash, per step",
    ours / N * 1e3, base / N * 1e3, "≤ 1.0×", "runbook -q run exec.yaml / bash exec.sh")

# 2. small-file copies: in-process, verified, atomic, synced vs bash `cp`.
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
ours, _ = median([RB, "-q", "run", "copy.yaml"], 5, fresh_dst)
base, _ = median(["bash", "copy.sh"], 5, fresh_dst)
row(f"{N} copy steps of 1 KiB files (verified, atomic, synced) vs {N} `cp` lines, per step",
    ours / N * 1e3, base / N * 1e3, "≤ 0.2× (5× faster)", "runbook -q run copy.yaml / bash copy.sh")

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
