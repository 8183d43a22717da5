#!/usr/bin/env bash
# The fleet demo: three sites (tokyo, osaka, nagoya), each a simulated Apex One server reached
# over SSH on 127.0.0.1, restored with the shipped runbook through Ansible (runbook.engine.run):
#   1. check mode: each site's plan, nothing touched;
#   2. the real run: every site restored, in parallel.
# Needs python3 and an OpenSSH server program (Debian: openssh-server); ansible-core is put in
# a virtual environment under target/. Set KEEP=1 to keep the folder afterwards.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/lib.sh"

bin=$(fleet_ansible "$repo")
fleet_build "$repo"
fleet_workdir runbook-fleet
work=$FLEET_WORK
fleet_sshd "$work"
fleet_sites "$repo" "$work/sites"

export ANSIBLE_CONFIG="$here/ansible.cfg"
play=("$bin/ansible-playbook" "$here/restore.yml" -e "@$work/connection.yml"
      -e "fleet_root=$work/sites" -e "runbook_binary=$repo/target/debug/runbook"
      -e "report_dir=$work/reports" -e "record_dir=$work/records")

printf '\n== Check mode: what the restore would do at each site (nothing is touched)\n' >&2
"${play[@]}" --check
printf '\n== The restore, at every site\n' >&2
"${play[@]}"
printf '\nFleet demo complete: JUnit reports in %s/reports, results in %s/records.\n' "$work" "$work" >&2
