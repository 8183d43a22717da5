#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""What each phase of run.sh must have produced: the results the fleet play kept per site
(record_dir), checked phase by phase.

Usage: expect.py PHASE RECORDS_DIR
"""

import json
import os
import sys

SITES = ('tokyo', 'osaka', 'nagoya')
STEPS = ['password_is_unknown', 'stage_backup', 'rename_to_pfx', 'enter_tool_dir', 'import', 'confirm_import']


def load(records):
    out = {}
    for site in SITES:
        with open(os.path.join(records, site + '.json')) as f:
            out[site] = json.load(f)
    return out


def outcomes(result):
    return [(s['id'], s['outcome']) for s in result['steps']]


def fail(site, what, result):
    sys.exit('%s: %s\n%s' % (site, what, json.dumps(result, indent=2)))


def expect(condition, site, what, result):
    if not condition:
        fail(site, what, result)


def check(results):
    for site, r in results.items():
        expect(not r.get('failed'), site, 'check mode must not fail', r)
        expect(r['changed'], site, 'check mode must report the changes the run would make', r)
        expect(r['outcome'] == 'would_succeed', site, 'the plan predicts success', r)
        expect([s['id'] for s in r['steps']] == STEPS, site, 'the plan lists every step', r)
        expect(dict(outcomes(r))['stage_backup'] == 'would_change', site, 'the copy would change', r)
        expect('run_id' not in r, site, 'check mode starts no run', r)


def first_run(results):
    for site in ('tokyo', 'osaka'):
        r = results[site]
        expect(not r.get('failed') and r['changed'], site, 'restored (changed, not failed)', r)
        expect(r['outcome'] == 'succeeded' and r['exit_code'] == 0, site, 'the run succeeded', r)
        expect(outcomes(r) == list(zip(STEPS, ['skipped', 'done', 'done', 'unchanged', 'done', 'unchanged'])),
               site, 'every step, with what it did', r)
        expect(all(s['this_task'] and isinstance(s['duration_ms'], int) for s in r['steps']), site,
               'every step ran in this task, with its duration', r)
        expect('successfully' in (dict((s['id'], s) for s in r['steps'])['import']['stdout_tail'] or ''), site,
               "the import's output tail", r)
        expect(r.get('report', '').endswith(site + '.xml'), site, 'the JUnit report was fetched', r)
    r = results['nagoya']
    expect(r['failed'] and r['exit_code'] == 1, 'nagoya', 'fails alone (exit 1)', r)
    expect(r['msg'].startswith('step import failed:'), 'nagoya', "the engine's message", r)
    expect(outcomes(r) == list(zip(STEPS, ['skipped', 'done', 'done', 'unchanged', 'failed', 'not_run'])),
           'nagoya', 'every step, the one never reached included', r)


def changed_inputs_refused(results):
    r = results['nagoya']
    expect(r['failed'] and r['exit_code'] == 3, 'nagoya', 'refused (exit 3)', r)
    expect('would render differently: stage_backup, rename_to_pfx' in r['msg'], 'nagoya',
           'the refusal names the steps that would differ', r)
    for site in ('tokyo', 'osaka'):
        unchanged_because_done(site, results[site])


def resumed(results):
    r = results['nagoya']
    expect(not r.get('failed') and r['changed'], 'nagoya', 'fixed: it finishes (changed)', r)
    expect(r['resumed'] and r['outcome'] == 'succeeded', 'nagoya', 'it resumed the same run', r)
    expect(outcomes(r) == list(zip(STEPS, ['skipped', 'done', 'done', 'unchanged', 'done', 'unchanged'])),
           'nagoya', 'every step', r)
    ran_now = [s['id'] for s in r['steps'] if s['this_task']]
    expect(ran_now == ['import', 'confirm_import'], 'nagoya', 'nothing that had finished ran again', r)
    for site in ('tokyo', 'osaka'):
        unchanged_because_done(site, results[site])


def all_done(results):
    for site, r in results.items():
        unchanged_because_done(site, r)


def unchanged_because_done(site, r):
    expect(not r.get('failed') and not r['changed'], site, 'ok and unchanged', r)
    expect(r['already_done'] and r['outcome'] == 'already_done', site, 'not run again: it had succeeded', r)
    expect([s['id'] for s in r['steps']] == STEPS, site, "the earlier run's steps are listed", r)


PHASES = dict(check=check, first_run=first_run, changed_inputs_refused=changed_inputs_refused, resumed=resumed,
              all_done=all_done)

if __name__ == '__main__':
    phase, records = sys.argv[1], sys.argv[2]
    PHASES[phase](load(records))
    print('ok: %s' % phase)
