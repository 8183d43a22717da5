#!/usr/bin/env bash
# The runbook.engine collection, tested for real, as users get it: built with `ansible-galaxy
# collection build` (or the tarball given as RUNBOOK_COLLECTION_TARBALL, as dist/build makes it)
# and installed from that tarball with `ansible-galaxy collection install` into a collections
# path of its own; ansible-core in a virtual environment, an OpenSSH server on 127.0.0.1 with
# throwaway keys, and the fleet example (examples/fleet: three sites, each a simulated Apex One
# server with its own folder through host_vars):
#   1. the collection's unit tests (the Windows path with a mocked connection) and its docs,
#      from the installed collection;
#   2. check mode: every site reports changes, nothing on any site is touched;
#   3. a real run: tokyo and osaka are restored, nagoya (a wrong password in its host_vars)
#      fails alone;
#   4. nagoya's host_vars changed so that finished steps would differ: refused, naming them;
#   5. nagoya fixed: it resumes its run, nothing finished runs again; the others are left alone;
#   6. once more: nothing runs anywhere;
#   7. an approved plan: refused with too few approvals, run with enough, its evidence fetched
#      and verified;
#   and no secret anywhere: in Ansible's output (verbose), the results, the reports, the hosts'
#   state folders.
# Needs python3, cargo, and sshd (Debian: openssh-server). Set KEEP=1 to keep the folder.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
collection="$repo/integrations/ansible/ansible_collections/runbook/engine"
. "$repo/examples/fleet/lib.sh"

say() { printf '\n== %s\n' "$*" >&2; }

bin=$(fleet_ansible "$repo")
fleet_build "$repo"
fleet_workdir runbook-ansible
work=$FLEET_WORK

say "The collection, built and installed from its tarball"
tarball=${RUNBOOK_COLLECTION_TARBALL:-}
if [ -z "$tarball" ]; then
    (cd "$work" && "$bin/ansible-galaxy" collection build "$collection" --output-path "$work/built" >&2)
    tarball=$(ls "$work"/built/runbook-engine-*.tar.gz)
fi
# From the throwaway folder, where no ansible.cfg names another copy of the collection.
(cd "$work" && "$bin/ansible-galaxy" collection install "$tarball" -p "$work/collections" >&2)
installed="$work/collections/ansible_collections/runbook/engine"
[ -f "$installed/MANIFEST.json" ] || { echo "the collection was not installed from $tarball" >&2; exit 1; }
export ANSIBLE_COLLECTIONS_PATH="$work/collections"

say "Unit tests of the action plugin (the Windows path with a mocked connection, not a Windows host)"
"$bin/python" "$installed/tests/unit/plugins/action/test_run.py"

say "The module's documentation parses, with its examples as the README shows them"
"$bin/ansible-doc" runbook.engine.run > "$work/doc.txt"
grep -q 'secrets' "$work/doc.txt"
"$bin/python" - "$installed/plugins/modules/run.py" "$installed/README.md" <<'PY'
import re, sys
examples = re.search(r'EXAMPLES = r"""\n(.*?)"""', open(sys.argv[1]).read(), re.S).group(1)
if examples not in open(sys.argv[2]).read():
    sys.exit("the collection's README does not show the module's examples as ansible-doc does")
PY

fleet_sshd "$work"
fleet_sites "$repo" "$work/sites"
# A copy of the example, so that a site's host_vars can be edited as an operator would.
cp -r "$repo/examples/fleet" "$work/fleet"
rm -rf "$work/fleet/sites" "$work/fleet/reports"
nagoya="$work/fleet/host_vars/nagoya.yml"
good_password='Nagoya-Install-2021!'
wrong_password='Nagoya-Typo-2012!'
sed -i "s/^cert_password: .*/cert_password: $wrong_password/" "$nagoya"

export ANSIBLE_CONFIG="$work/fleet/ansible.cfg"
export ANSIBLE_NOCOLOR=1
play() {
    local phase=$1 expected=$2
    shift 2
    local code=0
    "$bin/ansible-playbook" "$work/fleet/restore.yml" -e "@$work/connection.yml" \
        -e "fleet_root=$work/sites" -e "runbook_binary=$repo/target/debug/runbook" \
        -e "runbooks_dir=$repo/runbooks" -e "report_dir=$work/reports/$phase" \
        -e "record_dir=$work/records/$phase" "$@" > "$work/$phase.log" 2>&1 || code=$?
    if [ "$code" != "$expected" ]; then
        cat "$work/$phase.log" >&2
        echo "ansible-playbook exited with $code, expected $expected ($phase)" >&2
        exit 1
    fi
    "$bin/python" "$here/expect.py" "$phase" "$work/records/$phase"
}
tree() { (cd "$work/sites" && find . -print0 | LC_ALL=C sort -z | xargs -0 sha256sum 2>/dev/null; find . | LC_ALL=C sort); }

say "Check mode: every site would change; nothing is touched"
before=$(tree)
play check 0 --check
if [ "$(tree)" != "$before" ]; then echo "check mode changed a site" >&2; exit 1; fi

say "The run: tokyo and osaka are restored, nagoya fails alone"
play first_run 2 -vvv

say "nagoya's staging folder changed: the steps that ran would differ, so it is refused"
sed -i "s|^cert_staging_dir: .*|cert_staging_dir: \"{{ fleet_root }}/nagoya/D\"|" "$nagoya"
play changed_inputs_refused 2

say "nagoya fixed (its password): it resumes where it stopped; the others are left alone"
sed -i "s|^cert_staging_dir: .*|cert_staging_dir: \"{{ fleet_root }}/nagoya/C\"|" "$nagoya"
sed -i "s/^cert_password: .*/cert_password: $good_password/" "$nagoya"
play resumed 0 -v
runs=$(find "$work/sites/nagoya/state/runs" -name '*.jsonl' | wc -l)
if [ "$runs" != 1 ]; then echo "nagoya has $runs runs, expected its one run resumed" >&2; exit 1; fi

say "Once more: nothing runs anywhere"
play all_done 0

say "No state_dir: each inventory host gets its own state folder, the three run side by side"
name="ansible-test-$(basename "$work" | tr -dc 'a-z0-9' | tr 'A-Z' 'a-z')"
printf 'runbook: 1\nname: %s\ninputs:\n  folder: {}\nsteps:\n  - id: make\n    mkdir: "{{ folder }}"\n' "$name" \
    > "$work/probe.yaml"
home=$(cd ~ && pwd)
forget_probe() {
    local site
    for site in tokyo osaka nagoya; do
        rm -rf "$home/.runbook/hosts/$site/runs/$name" "$home/.runbook/hosts/$site/ansible/$name" \
            "$home/.runbook/hosts/$site/locks/$name".*
    done
}
trap 'forget_probe; fleet_cleanup' EXIT
"$bin/ansible-playbook" "$here/playbooks/default-state.yml" -i "$work/fleet/inventory.yml" \
    -e "@$work/connection.yml" -e "fleet_root=$work/sites" -e "runbook_binary=$repo/target/debug/runbook" \
    -e "probe_runbook=$work/probe.yaml" > "$work/default_state.log" 2>&1 || {
    cat "$work/default_state.log" >&2
    exit 1
}
for site in tokyo osaka nagoya; do
    if [ "$(find "$home/.runbook/hosts/$site/runs/$name" -name '*.jsonl' | wc -l)" != 1 ]; then
        echo "$site: expected one run in its own state folder" >&2
        exit 1
    fi
done

say "An approved plan: refused with too few approvals, run with enough, its evidence verified"
plans="$work/approved"
mkdir -p "$plans/runbooks" "$work/evidence"
approved_secret='Approved-Token-77!'
printf 'runbook: 1\nname: approved\ninputs:\n  folder: {}\n  token: {secret: true}\nsteps:\n  - id: make\n    mkdir: "{{ folder }}"\n  - id: write\n    write: { path: "{{ folder }}/token.txt", content: "{{ token }}" }\n' \
    > "$plans/runbooks/approved.yaml"
(cd "$plans" && "$repo/target/debug/runbook" plan runbooks/approved.yaml --var "folder=$work/sites/tokyo/approved" \
    --out change.plan.json >/dev/null)
ssh-keygen -q -t ed25519 -N '' -C approver@example.com -f "$work/approver"
echo "approver@example.com $(cut -d' ' -f1,2 "$work/approver.pub")" > "$plans/allowed_signers"
"$repo/target/debug/runbook" approve "$plans/change.plan.json" --key "$work/approver"
"$bin/ansible-playbook" "$here/playbooks/approved.yml" -i "$work/fleet/inventory.yml" \
    -e "@$work/connection.yml" -e "fleet_root=$work/sites" -e "runbook_binary=$repo/target/debug/runbook" \
    -e "plan_dir=$plans" -e "evidence_dir=$work/evidence" -e "approved_secret=$approved_secret" \
    > "$work/approved.log" 2>&1 || {
    cat "$work/approved.log" >&2
    exit 1
}
"$repo/target/debug/runbook" verify "$work/evidence/tokyo.zip" --allowed-signers "$plans/allowed_signers" \
    --require-approvals 1 >&2
"$bin/python" - "$work/evidence/tokyo.zip" "$approved_secret" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    leaked = [n for n in z.namelist() if sys.argv[2].encode() in z.read(n)]
if leaked:
    sys.exit("the secret is in the evidence: %s" % leaked)
PY

say "No secret anywhere: Ansible's output, the results, the reports, the hosts' state folders"
leaks=0
for secret in 'Tokyo-Install-2019!' 'Osaka-Install-2017!' "$good_password" "$wrong_password" "$approved_secret"; do
    if grep -rlF -- "$secret" "$work"/*.log "$work/records" "$work/reports" "$work"/sites/*/state \
        "$work"/sites/tokyo/approved-state; then
        echo "the secret $secret leaked into the files above" >&2
        leaks=1
    fi
done
[ "$leaks" = 0 ]
echo "ok: the fleet" >&2
