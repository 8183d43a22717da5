#!/usr/bin/env bash
# The whole story on a simulated Apex One server, in a throwaway folder:
#   1. validate the shipped runbooks;
#   2. back up the server authentication certificate from the old (upgraded) server:
#      the install folder is detected, the copy verified and its SHA-256 recorded;
#   3. plan the restore on the newly installed server (the dry run) without the password, as
#      the change manager does, saved for review (and as Markdown for the ticket);
#   4. run exactly the reviewed plan: the first attempt uses a wrong password and stops at the
#      import, with a journal;
#   5. resume with the right password: it continues exactly where it stopped;
#   6. show the runs recorded in the journal, and the record of the restore for the ticket.
# Set KEEP=1 to keep the folder afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin runbook --example simulated-server
runbook="$PWD/target/release/runbook"
books="$PWD/runbooks/apex-one"
server="$PWD/target/release/examples/simulated-server"

work=$(mktemp -d "${TMPDIR:-/tmp}/runbook-demo.XXXXXX")
if [ "${KEEP:-}" = 1 ]; then echo "keeping $work"; else trap 'rm -rf "$work"' EXIT; fi
cd "$work"
export RUNBOOK_STATE_DIR="$work/state"
password='Apex-Install-2019!'
old=$("$server" make "$work/old-server" upgraded "$password" 8000)
new=$("$server" make "$work/new-server" fresh "$password" 8378)

if [ -t 2 ] && [ -z "${NO_COLOR:-}" ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain" >&2; }
show() { printf '$ %s\n' "$*" >&2; "$@"; }

say "Validate the shipped runbooks"
show "$runbook" validate "$books"/*.yaml

say "Back up the certificate from the old server (install folder detected: upgraded OfficeScan layout)"
show "$runbook" run --yes "$books/backup-auth-cert.yaml" \
    --var backup_dir="$work/backup" \
    --var fresh_install_dir="$work/old-server/Program Files (x86)/Trend Micro/Apex One" \
    --var upgraded_install_dir="$old"
show cat "$work/backup/OfficeScanAuth.dat.sha256"

restore=(--var backup_file="$work/backup/OfficeScanAuth.dat" --var install_dir="$new" --var staging_dir="$work/new-server/C")

say "Plan the restore on the new server without the password (a dry run: nothing is touched), saved for review"
show "$runbook" plan "$books/restore-auth-cert.yaml" "${restore[@]}" --out "$work/restore.plan.json"
"$runbook" show-plan "$work/restore.plan.json" --format markdown > "$work/restore-plan.md"
echo "(the plan for the ticket, as Markdown: $(wc -l < "$work/restore-plan.md") lines in restore-plan.md)" >&2

say "Run the reviewed plan, with a mistyped password: the import fails and the run stops there"
RUNBOOK_INPUT_PASSWORD='wrong-password' show "$runbook" run --plan "$work/restore.plan.json" \
    || echo "(exit code $?, as expected)" >&2

say "Resume with the right password: finished steps are not repeated"
RUNBOOK_INPUT_PASSWORD="$password" show "$runbook" resume "$books/restore-auth-cert.yaml"

say "The journal's account of the runs"
show "$runbook" status
"$runbook" status --format markdown > "$work/restore-record.md"
echo "(the record of the restore for the ticket: restore-record.md)" >&2
echo >&2
echo "Demo complete: the certificate was backed up, restored and verified by the simulated CertificateManager.exe." >&2
