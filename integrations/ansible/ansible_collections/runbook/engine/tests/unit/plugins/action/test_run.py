# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Unit tests of the runbook.engine.run action plugin, with a mocked connection.

The Windows tests drive the plugin's Windows path (PowerShell shell, ansible.windows.win_command
for the engine) against a mocked connection: they are NOT run against a Windows host. The POSIX
path is also exercised for real, over SSH, by integrations/ansible/tests/run.sh.

Run: python -m unittest discover -s tests/unit -t . (from the collection's folder), with
ansible-core importable.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import tempfile
import unittest
from unittest import mock

from ansible.plugins.shell.powershell import ShellModule as PowerShell
from ansible.plugins.shell.sh import ShellModule as Sh

HERE = os.path.dirname(os.path.abspath(__file__))
PLUGIN = os.path.join(HERE, '..', '..', '..', '..', 'plugins', 'action', 'run.py')
spec = importlib.util.spec_from_file_location('runbook_engine_action_run', PLUGIN)
run_plugin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_plugin)

SECRET = 'S3cret-Cert-Pass!'

RUNBOOK = """runbook: 1
name: restore
inputs:
  password: { secret: true }
  target: {}
steps:
  - id: common
    include: { runbook: lib/common.yaml, with: { target: '{{ target }}' } }
  - id: import
    exec: [tool, '{{ password }}']
"""
COMMON = """runbook: 1
name: common
inputs:
  target: {}
steps:
  - id: dir
    mkdir: '{{ target }}'
"""

EVENTS_FAILED = [
    {'event': 'run_resumed', 'runbook': 'restore', 'run_id': 'R1', 'journal': 'J'},
    {'event': 'step_started', 'step': 'import', 'index': 2, 'title': 'import', 'action': 'exec tool ****'},
    {'event': 'output', 'step': 'import', 'stream': 'stderr', 'line': 'bad password ****'},
    {'event': 'step_finished', 'step': 'import', 'outcome': 'failed', 'duration_ms': 5,
     'error': '`tool` exited with code 3'},
    {'event': 'run_finished', 'outcome': 'failed', 'steps': {'done': 0, 'unchanged': 0, 'skipped': 0, 'failed': 1},
     'duration_ms': 9},
]
STATUS = [{
    'run_id': 'R1',
    'steps': [
        {'step': 'common.dir', 'state': 'done', 'error': None, 'duration_ms': 1},
        {'step': 'import', 'state': 'failed', 'error': '`tool` exited with code 3', 'duration_ms': 5,
         'stderr_tail': 'bad password ****'},
    ],
    'not_reached': ['after'],
}]


def powershell_script(cmd):
    """The script of a PowerShell command line made by the shell plugin's _encode_script."""
    return base64.b64decode(cmd.split()[-1]).decode('utf-16-le')


def lines(events):
    return ''.join(json.dumps(e) + '\n' for e in events)


class Harness(object):
    """An ActionModule whose connection and remote calls are mocks that record what they get."""

    def __init__(self, shell, args, check_mode=False, engine=None):
        self.folder = tempfile.mkdtemp()
        os.makedirs(os.path.join(self.folder, 'lib'))
        self.runbook = os.path.join(self.folder, 'restore.yaml')
        with open(self.runbook, 'w') as f:
            f.write(RUNBOOK)
        with open(os.path.join(self.folder, 'lib', 'common.yaml'), 'w') as f:
            f.write(COMMON)
        task = mock.MagicMock()
        task.args = dict(args, runbook=self.runbook)
        task.async_val = 0
        task.check_mode = check_mode
        task.no_log = False
        task.action = 'runbook.engine.run'
        connection = mock.MagicMock()
        connection._shell = shell
        shell.tmpdir = None
        self.action = run_plugin.ActionModule(task, connection, mock.MagicMock(), mock.MagicMock(), mock.MagicMock(), None)
        self.action._find_needle = lambda kind, path: path
        self.transfers = []
        self.commands = []
        self.modules = []
        self.no_log_during_module = []
        self.engine = engine or (lambda argv, stdin: (1, lines(EVENTS_FAILED), ''))
        a = self.action
        a._make_tmp_path = self._make_tmp_path
        a._remove_tmp_path = mock.MagicMock()
        a._remote_expand_user = lambda path, **kw: self.home
        a._transfer_file = lambda local, remote: self.transfers.append((local, remote))
        a._fixup_perms2 = mock.MagicMock()
        a._low_level_execute_command = self._low_level
        a._execute_module = self._module

    def _make_tmp_path(self, remote_user=None):
        self.action._connection._shell.tmpdir = self.tmp
        return self.tmp

    def _low_level(self, cmd, sudoable=True, in_data=None, **kw):
        self.commands.append((cmd, in_data))
        if ' status ' in cmd:
            return dict(rc=0, stdout=json.dumps(STATUS), stderr='')
        if ' run ' in cmd:
            rc, out, err = self.engine(cmd, in_data)
            return dict(rc=rc, stdout=out, stderr=err)
        return dict(rc=0, stdout='', stderr='')

    def _module(self, module_name=None, module_args=None, task_vars=None, **kw):
        self.modules.append((module_name, module_args))
        self.no_log_during_module.append(self.action._task.no_log)
        argv = module_args['argv']
        if argv[1] == 'status':
            return dict(rc=0, stdout=json.dumps(STATUS), stderr='')
        rc, out, err = self.engine(argv, module_args.get('stdin'))
        return dict(rc=rc, stdout=out, stderr=err, changed=True)

    def run(self, host='tokyo'):
        return self.action.run(task_vars={'inventory_hostname': host})


class WindowsHost(unittest.TestCase):
    """The Windows path, with a mocked connection: not run against a Windows host."""

    def harness(self, **kw):
        h = Harness(PowerShell(), dict(binary='C:\\Tools\\runbook.exe', vars={'target': 'D:\\cert', 'n': 3},
                                       secrets={'password': SECRET}), **kw)
        h.home = 'C:\\Users\\ops'
        h.tmp = 'C:\\Users\\ops\\AppData\\Local\\Temp\\ansible-tmp-1'
        return h

    def test_the_engine_runs_through_win_command_with_the_secrets_on_stdin(self):
        h = self.harness()
        result = h.run()
        name, module_args = h.modules[0]
        self.assertEqual(name, 'ansible.windows.win_command')
        argv = module_args['argv']
        base = 'C:\\Users\\ops\\.runbook\\hosts\\tokyo\\ansible\\restore'
        self.assertEqual(argv[:3], ['C:\\Tools\\runbook.exe', 'run', base + '\\files\\restore.yaml'])
        self.assertIn('--continue', argv)
        self.assertIn('--skip-if-succeeded', argv)
        self.assertEqual(argv[argv.index('--state-dir') + 1], 'C:\\Users\\ops\\.runbook\\hosts\\tokyo')
        self.assertEqual(argv[-2:], ['--secrets-from', '-'])
        self.assertIn('target=D:\\cert', argv)
        self.assertIn('n=3', argv)
        self.assertNotIn(SECRET, ' '.join(argv))
        self.assertEqual(json.loads(module_args['stdin']), {'password': SECRET})
        self.assertEqual(module_args['output_encoding_override'], 'utf-8')
        self.assertEqual(h.no_log_during_module[0], True, 'the module call is no_log while it carries secrets')
        self.assertEqual(h.action._task.no_log, False, 'and the task is as it was afterwards')
        # The files went to Ansible's temporary folder, keeping the include's relative place,
        # then were copied under the state folder by PowerShell.
        remote = [r for _local, r in h.transfers]
        self.assertEqual(remote, [h.tmp + '\\files\\restore.yaml', h.tmp + '\\files\\lib\\common.yaml'])
        scripts = ' '.join(cmd for cmd, _data in h.commands)
        self.assertNotIn(SECRET, scripts)
        self.assertTrue(all(data is None for _cmd, data in h.commands))
        # The result: every step, the engine's failure, nothing secret.
        self.assertTrue(result['failed'])
        self.assertEqual(result['exit_code'], 1)
        self.assertTrue(result['resumed'])
        self.assertEqual(result['msg'], 'step import failed: `tool` exited with code 3')
        self.assertEqual([(s['id'], s['outcome'], s['this_task']) for s in result['steps']],
                         [('common.dir', 'done', False), ('import', 'failed', True), ('after', 'not_run', False)])
        self.assertNotIn(SECRET, json.dumps(result))

    def test_powershell_scripts_quote_paths(self):
        h = self.harness()
        h.home = "C:\\Users\\o'brien"
        h.run()
        scripts = [powershell_script(cmd) for cmd, _data in h.commands]
        install = [s for s in scripts if 'Copy-Item' in s]
        self.assertEqual(len(install), 1, scripts)
        # A quote in a path reaches PowerShell doubled inside single quotes.
        self.assertIn("-Destination 'C:\\Users\\o''brien\\.runbook\\hosts\\tokyo\\ansible\\restore\\files\\lib\\common.yaml'",
                      install[0])
        self.assertIn("$ErrorActionPreference = 'Stop'", install[0])

    def test_check_mode_plans_in_the_temporary_folder(self):
        plan = {'steps': [{'id': 'common.dir', 'verdict': 'would_change'},
                          {'id': 'import', 'verdict': 'would_fail', 'reason': 'tool not found'}],
                'would_fail': True}
        h = self.harness(check_mode=True, engine=lambda argv, stdin: (1, json.dumps(plan), ''))
        result = h.run()
        argv = h.modules[0][1]['argv']
        self.assertIn('--dry-run', argv)
        self.assertNotIn('--yes', argv)
        self.assertTrue(argv[2].startswith(h.tmp + '\\files\\'))
        self.assertTrue(result['changed'])
        self.assertTrue(result['failed'])
        self.assertEqual(result['msg'], 'step import would fail: tool not found')
        self.assertEqual(len(h.modules), 1, 'no status: nothing ran')

    def test_a_missing_windows_collection_is_explained(self):
        h = self.harness()
        h.action._execute_module = lambda **kw: dict(failed=True, msg="The module ansible.windows.win_command was not found")
        result = h.run()
        self.assertTrue(result['failed'])
        self.assertIn('ansible-galaxy collection install ansible.windows', result['msg'])


class PosixHost(unittest.TestCase):
    def harness(self, **kw):
        h = Harness(Sh(), dict(vars={'target': '/srv/cert', 'flag': True}, secrets={'password': SECRET}), **kw)
        h.home = '/home/ops'
        h.tmp = '/home/ops/.ansible/tmp/ansible-tmp-1'
        return h

    def test_the_secrets_go_on_stdin_and_nowhere_else(self):
        h = self.harness()
        result = h.run()
        runs = [(cmd, data) for cmd, data in h.commands if ' run ' in cmd]
        self.assertEqual(len(runs), 1)
        cmd, data = runs[0]
        self.assertTrue(cmd.startswith("runbook run /home/ops/.runbook/hosts/tokyo/ansible/restore/files/restore.yaml "), cmd)
        self.assertIn('--var target=/srv/cert', cmd)
        self.assertIn('--var flag=true', cmd)
        self.assertIn('--secrets-from -', cmd)
        self.assertEqual(json.loads(data), {'password': SECRET})
        for cmd, data in h.commands:
            self.assertNotIn(SECRET, cmd)
        self.assertEqual(h.modules, [], 'no module (and no Python) on a POSIX host')
        self.assertNotIn(SECRET, json.dumps(result))

    def test_each_inventory_host_has_its_own_state_folder_by_default(self):
        # Two inventory hosts served by one machine must not share journals or locks.
        dirs = []
        for name in ('site-a', 'site:b/c'):
            h = self.harness()
            result = h.run(host=name)
            cmd = [c for c, _data in h.commands if ' run ' in c][0]
            dirs.append(result['state_dir'])
            self.assertIn('--state-dir ' + result['state_dir'], cmd)
        self.assertEqual(dirs, ['/home/ops/.runbook/hosts/site-a', '/home/ops/.runbook/hosts/site_b_c'])
        h = self.harness()
        h.action._task.args.update(state_dir='state/here')
        self.assertEqual(h.run()['state_dir'], '/home/ops/state/here', 'relative to the home folder')
        h = self.harness()
        h.action._task.args.update(state_dir='/srv/runbook')
        self.assertEqual(h.run()['state_dir'], '/srv/runbook')

    def test_force_and_fresh(self):
        h = self.harness()
        h.action._task.args.update(force=True, fresh=True)
        h.run()
        cmd = [c for c, _data in h.commands if ' run ' in c][0]
        self.assertIn('--fresh', cmd)
        self.assertNotIn('--continue', cmd)
        self.assertNotIn('--skip-if-succeeded', cmd)

    def test_already_done_is_ok_and_unchanged(self):
        event = {'event': 'already_done', 'runbook': 'restore', 'run_id': 'R0', 'journal': 'J',
                 'steps': [{'step': 'import', 'state': 'done', 'error': None, 'duration_ms': 4}]}
        h = self.harness(engine=lambda cmd, stdin: (0, lines([event]), ''))
        result = h.run()
        self.assertFalse(result['changed'])
        self.assertFalse(result['failed'])
        self.assertTrue(result['already_done'])
        self.assertEqual(result['run_id'], 'R0')
        self.assertEqual(result['steps'][0]['outcome'], 'done')
        self.assertFalse([c for c, _data in h.commands if ' status ' in c])

    def test_a_refusal_carries_the_engines_message(self):
        stderr = ('error: with the inputs given now, steps that already ran would render differently: stage\n'
                  '  - step 2 (stage) renders differently:\n')
        h = self.harness(engine=lambda cmd, stdin: (3, '', stderr))
        result = h.run()
        self.assertTrue(result['failed'])
        self.assertEqual(result['exit_code'], 3)
        self.assertIn('would render differently: stage', result['msg'])

    def test_secrets_in_anything_returned_are_masked(self):
        leaky = [{'event': 'run_started', 'runbook': 'r', 'run_id': 'R', 'journal': 'J'},
                 {'event': 'step_finished', 'step': 'x', 'outcome': 'failed', 'duration_ms': 1,
                  'error': 'said ' + SECRET}]
        h = self.harness(engine=lambda cmd, stdin: (1, lines(leaky), 'echo ' + SECRET))
        result = h.run()
        self.assertNotIn(SECRET, json.dumps(result))
        self.assertIn('said ********', result['msg'])


class Files(unittest.TestCase):
    def test_includes_are_found_transitively_and_a_missing_one_is_named(self):
        folder = tempfile.mkdtemp()
        with open(os.path.join(folder, 'a.yaml'), 'w') as f:
            f.write("runbook: 1\nname: a\nsteps:\n  - id: b\n    include: { runbook: sub/b.yaml }\n")
        os.makedirs(os.path.join(folder, 'sub'))
        with open(os.path.join(folder, 'sub', 'b.yaml'), 'w') as f:
            f.write("runbook: 1\nname: b\nsteps:\n  - id: c\n    include: { runbook: ../c.yaml }\n")
        with open(os.path.join(folder, 'c.yaml'), 'wb') as f:
            f.write('runbook: 1\nname: c\nsteps: []\n'.encode('utf-16'))
        files, name = run_plugin.runbook_files(os.path.join(folder, 'a.yaml'))
        self.assertEqual(name, 'a')
        self.assertEqual([os.path.relpath(p, folder) for p in files], ['a.yaml', os.path.join('sub', 'b.yaml'), 'c.yaml'])
        os.remove(os.path.join(folder, 'c.yaml'))
        with self.assertRaises(Exception) as caught:
            run_plugin.runbook_files(os.path.join(folder, 'a.yaml'))
        self.assertIn('../c.yaml', str(caught.exception))


class ReviewedPlans(unittest.TestCase):
    def _plan(self, named):
        folder = tempfile.mkdtemp()
        os.makedirs(os.path.join(folder, 'runbooks', 'common'))
        main = os.path.join(folder, 'runbooks', 'main.yaml')
        common = os.path.join(folder, 'runbooks', 'common', 'x.yaml')
        for path in (main, common):
            with open(path, 'w') as f:
                f.write('runbook: 1\nname: n\nsteps: []\n')
        plan = os.path.join(folder, 'change.plan.json')
        with open(plan, 'w') as f:
            json.dump(dict(format=1, path=named, inputs=dict(site='tokyo')), f)
        os.makedirs(plan + '.approvals')
        for name in ('alice.sig', 'alice.comment', 'notes.txt'):
            with open(os.path.join(plan + '.approvals', name), 'w') as f:
                f.write('x')
        return run_plugin.reviewed_plan(plan), main, [main, common]

    def test_the_runbook_is_laid_out_as_the_plan_names_it_with_the_approvals_beside_the_plan(self):
        plan, main, files = self._plan('runbooks/main.yaml')
        self.assertEqual(plan['inputs'], dict(site='tokyo'))
        rels = [rel for _local, rel in run_plugin.plan_uploads(plan, main, files)]
        self.assertEqual(rels, ['work/runbooks/main.yaml', 'work/runbooks/common/x.yaml', 'plan/change.plan.json',
                                'plan/change.plan.json.approvals/alice.comment',
                                'plan/change.plan.json.approvals/alice.sig'])

    def test_a_plan_naming_its_runbook_by_an_absolute_path_is_refused(self):
        for named in ('/srv/runbooks/main.yaml', 'C:\\runbooks\\main.yaml', '../main.yaml'):
            plan, main, files = self._plan(named)
            with self.assertRaises(Exception) as caught:
                run_plugin.plan_uploads(plan, main, files)
            self.assertIn('relative path', str(caught.exception))


if __name__ == '__main__':
    unittest.main()
