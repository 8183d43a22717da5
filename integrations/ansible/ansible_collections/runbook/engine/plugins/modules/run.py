# -*- coding: utf-8 -*-
# Copyright: runbook maintainers
# SPDX-License-Identifier: MIT OR Apache-2.0
#
# The documentation of runbook.engine.run. The work is done on the controller by the action
# plugin of the same name (plugins/action/run.py), which sends the runbook to the host and runs
# the engine there; nothing of this file runs on a host.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: run
short_description: Run a runbook on a host with runbook's engine, resuming where it stopped
version_added: 0.1.0
description:
  - Sends a runbook (and every runbook it includes, and the input files named in O(vars_files))
    from the controller to the host, then runs it there with the C(runbook) program
    (C(runbook run --yes --format json)), journaled step by step.
  - When the host has an unfinished run of this runbook (a step failed, or the run was
    interrupted), the run continues where it stopped, with the task's current inputs, as long as
    every step that already ran renders the same with them (C(runbook run --continue)).
    Otherwise the task fails naming the steps that would render differently; O(fresh=true)
    starts over.
  - When the host's last run of the same runbook (same files, same inputs) succeeded, nothing
    runs and the task is ok and unchanged, unless O(force=true).
  - In check mode the engine predicts instead (C(runbook run --dry-run)); the task is changed
    when a step would change something and failed when one would fail. Nothing on the host is
    changed; the files go to Ansible's temporary folder, removed afterwards.
  - Secrets reach the engine only on its standard input (C(--secrets-from -)), never on a
    command line, in a file on the host, or in the task's result (the engine masks them in
    everything it prints and journals, and this plugin masks them again in the result).
  - POSIX hosts (over SSH) need only the C(runbook) program, no Python. Windows hosts (WinRM,
    PSRP, or SSH with the PowerShell shell) run the engine through C(ansible.windows.win_command)
    (for its standard input), so the C(ansible.windows) collection must be installed on the
    controller.
author:
  - runbook maintainers (@runbook-engine)
options:
  runbook:
    description:
      - Path of the runbook on the controller (relative paths as for C(ansible.builtin.copy)'s
        O(ansible.builtin.copy#module:src)). It and the runbooks it includes, found by reading
        their C(include) steps, are sent to the host, keeping their relative layout.
    type: path
    required: true
  binary:
    description:
      - The runbook program on the host, a name looked for on its C(PATH), or a full path.
    type: str
    default: runbook
  vars:
    description:
      - Inputs of the runbook, by name (C(--var name=value)). Values are sent as text; C(true)
        and C(false) as the engine spells them.
    type: dict
    default: {}
  vars_files:
    description:
      - Input files on the controller (YAML mappings of input names to values), sent to the host
        and given to the engine in order (C(--vars)); later files win, and O(vars) wins over them.
    type: list
    elements: path
    default: []
  secrets:
    description:
      - Secret inputs, by name. Sent to the engine on its standard input as JSON; never on a
        command line, in a file on the host, or in any output.
    type: dict
    default: {}
  state_dir:
    description:
      - The engine's state folder on the host (journals, locks, backups for rollback). The files
        this plugin sends are kept under it, in C(ansible/<runbook name>), so that a later task
        continues the same run.
      - Default C(.runbook/hosts/<inventory host name>) in the remote user's home folder; each
        inventory host has its own, even when several are served by one machine. On the host,
        C(runbook status --state-dir <that folder>) shows its runs.
      - A relative path is taken from the remote user's home folder.
    type: str
  force:
    description:
      - Run even when the host's last run of the same runbook with the same inputs succeeded.
    type: bool
    default: false
  fresh:
    description:
      - Start a new run even when the host has an unfinished one (the unfinished run is marked
        abandoned).
    type: bool
    default: false
  report:
    description:
      - A JUnit XML report of the run (one test case per step), written on the controller at this
        path (relative to the playbook's folder). Template it per host, for example
        C(reports/{{ inventory_hostname }}.xml).
    type: path
  on_failure:
    description:
      - What the engine does when a step fails; C(rollback) undoes the steps it did, newest
        first (the task still fails). Default the runbook's C(on-failure), else C(stop).
    type: str
    choices: [stop, rollback]
  durability:
    description:
      - C(full) syncs every journal record to disk before a step counts; C(process) survives the
        engine being killed but not the host losing power. Default the engine's (C(full)).
    type: str
    choices: [full, process]
  plan:
    description:
      - A reviewed plan on the controller (C(runbook plan FILE --out PLAN)), run exactly as
        reviewed (C(runbook run --plan)); its approvals (the C(PLAN.approvals) folder beside it)
        go with it. The plan carries the inputs, so O(vars) and O(vars_files) are not given;
        O(secrets) still are. O(runbook) names the same runbook on the controller, and the plan
        must have been made from the folder above it, naming it by a relative path (the host
        lays the files out the same way).
      - In check mode the runbook is predicted with the plan's inputs.
    type: path
  require_approvals:
    description:
      - Refuse (exit code 3, nothing touched) unless this many distinct principals of
        O(allowed_signers) approved the plan (C(--require-approvals)). The host's own policy
        file, if it has one, can only make this stricter.
    type: int
  allowed_signers:
    description:
      - An OpenSSH C(allowed_signers) file on the controller saying whose approvals count; sent
        to the host with the plan (C(--allowed-signers)).
    type: path
  evidence:
    description:
      - Where to write the run's evidence bundle on the controller (C(runbook evidence)), with the
        plan and its approvals, the runbook files, the journal, the record and JUnit report, a
        manifest of digests. Template it per host, for example
        C(evidence/{{ inventory_hostname }}.zip); check it with C(runbook verify).
    type: path
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Runs the engine's dry run; the task is changed when a step would change something.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: [posix, windows]
  async:
    description: Supports being used with the C(async) keyword.
    support: none
notes:
  - Windows hosts use the C(ansible.windows.win_command) module to start the engine (for its
    standard input) and the connection's file transfer, as C(ansible.windows.win_copy) does,
    to send files; that path is unit-tested with a mocked connection, not against a real Windows
    host.
  - Hosts run in parallel as usual (forks); each host has its own journal, so one host failing
    does not stop the others, and re-running the play continues it alone.
"""

EXAMPLES = r"""
- name: Restore the Apex One authentication certificate at every site
  runbook.engine.run:
    runbook: runbooks/apex-one/restore-auth-cert.yaml
    binary: /opt/runbook/bin/runbook
    vars:
      install_dir: "{{ apex_install_dir }}"
      backup_file: "{{ site_backup_file }}"
      staging_dir: "{{ site_staging_dir }}"
    secrets:
      password: "{{ vault_cert_password }}"
    report: "reports/{{ inventory_hostname }}.xml"
  register: restore

- name: Show what each step did
  ansible.builtin.debug:
    msg: "{{ restore.steps | map(attribute='outcome') | list }}"

- name: Windows host (needs the ansible.windows collection on the controller)
  runbook.engine.run:
    runbook: runbooks/apex-one/restore-auth-cert.yaml
    binary: 'C:\Tools\runbook.exe'
    vars_files: [sites/tokyo.yaml]
    secrets:
      password: "{{ vault_cert_password }}"

- name: Run the change board's approved plan, and bring back each host's evidence
  runbook.engine.run:
    runbook: runbooks/apex-one/restore-auth-cert.yaml
    plan: "plans/{{ inventory_hostname }}.plan.json"
    require_approvals: 2
    allowed_signers: approvers/allowed_signers
    secrets:
      password: "{{ vault_cert_password }}"
    evidence: "evidence/{{ inventory_hostname }}.zip"
"""

RETURN = r"""
exit_code:
  description: The engine's exit code (0 success, 1 a step failed or would fail, 2 invalid
    runbook or inputs, 3 refused, 130 interrupted).
  returned: always
  type: int
  sample: 1
run_id:
  description: The run's id on the host (an earlier run's when nothing ran again).
  returned: when a run started, continued, or had already succeeded
  type: str
  sample: 20261127-101500-123-4242
journal:
  description: Path of the run's journal on the host.
  returned: when a run started, continued, or had already succeeded
  type: str
outcome:
  description: How the run ended (C(succeeded), C(failed), C(interrupted), C(stopped)); in check
    mode C(would_fail) or C(would_succeed); C(already_done) when nothing ran again.
  returned: always
  type: str
resumed:
  description: Whether an unfinished run was continued.
  returned: always
  type: bool
already_done:
  description: Whether the host's last run with the same runbook and inputs had succeeded, so
    nothing ran.
  returned: always
  type: bool
steps:
  description: Every step of the runbook in order, including those done by an earlier task that
    this one continued, and those never reached (outcome C(not_run)). In check mode, the
    prediction (outcome C(would_change), C(unchanged), C(would_fail), C(skipped), ...).
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: The step's journal id (C(<include id>.<step id>) for included steps).
      type: str
    outcome:
      description: C(done), C(unchanged), C(skipped), C(failed), C(not_run), C(interrupted),
        C(started) (never finished), C(marked_done); in check mode the predicted verdict.
      type: str
    duration_ms:
      description: How long it took, when it finished.
      type: int
    error:
      description: Why it failed, or in check mode why it would fail or change.
      type: str
    this_task:
      description: Whether this task ran it (false for steps an earlier task did).
      type: bool
    stdout_tail:
      description: The last lines the step printed (secrets masked).
      type: str
    stderr_tail:
      description: The last lines the step printed on its error stream (secrets masked).
      type: str
rollback:
  description: The rollback the engine ran after a failed step (O(on_failure=rollback)), with
    its outcome (C(complete), C(partial), C(failed)) and the steps not undone.
  returned: when a rollback ran
  type: dict
stderr_tail:
  description: The last lines the engine printed on its error stream (secrets masked).
  returned: always
  type: str
evidence:
  description: Where the run's evidence bundle was written on the controller (O(evidence)).
  returned: when O(evidence) was given and a run started or continued
  type: str
state_dir:
  description: The engine's state folder on the host (journals, locks, the files sent).
  returned: always
  type: str
"""
