# -*- coding: utf-8 -*-
# Copyright: runbook maintainers
# SPDX-License-Identifier: MIT OR Apache-2.0
"""runbook.engine.run: send a runbook to a host and run it there with runbook's engine.

Everything happens from the controller, through the connection: files go with the connection's
file transfer, the engine is started as a command (POSIX: through the login shell, its standard
input fed by the connection; Windows: through ansible.windows.win_command, for its standard
input). The engine does the work and keeps the journal on the host; this plugin only turns the
engine's JSON events and its record of the run into the task's result.
"""

from __future__ import annotations

import codecs
import json
import ntpath
import os
import posixpath
import shlex

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.action import ActionBase

try:
    import yaml
except ImportError:  # pragma: no cover - ansible-core depends on PyYAML
    yaml = None

ARGUMENT_SPEC = dict(
    runbook=dict(type='path', required=True),
    binary=dict(type='str', default='runbook'),
    vars=dict(type='dict', default={}),
    vars_files=dict(type='list', elements='path', default=[]),
    secrets=dict(type='dict', default={}, no_log=True),
    state_dir=dict(type='str'),
    force=dict(type='bool', default=False),
    fresh=dict(type='bool', default=False),
    report=dict(type='path'),
    on_failure=dict(type='str', choices=['stop', 'rollback']),
    durability=dict(type='str', choices=['full', 'process']),
    plan=dict(type='path'),
    require_approvals=dict(type='int'),
    allowed_signers=dict(type='path'),
    evidence=dict(type='path'),
)

MASK = '********'
TAIL_LINES = 20
MAX_INCLUDES = 64

# The engine's step states (`runbook status --format json`) as the task reports them.
STATE_NAMES = {
    'started, never finished': 'started',
    'marked done by the operator': 'marked_done',
}

# Plan verdicts that mean a real run would (or might) change something.
CHANGING_VERDICTS = ('would_change', 'decided_at_run_time')


class ActionModule(ActionBase):
    TRANSFERS_FILES = True
    _requires_connection = True

    def run(self, tmp=None, task_vars=None):
        self._supports_check_mode = True
        self._supports_async = False
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        secrets = args['secrets'] or {}
        hidden = secret_texts(secrets) | {to_text(v) for v in getattr(validation, '_no_log_values', ()) if v}
        try:
            result.update(self._run(args, task_vars or {}, secrets))
        except AnsibleError as e:
            result.update(failed=True, msg=to_text(e))
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return mask(result, hidden)

    # ---- the task ---------------------------------------------------------------------------

    def _run(self, args, task_vars, secrets):
        host = Host(self, task_vars)
        local_runbook = self._find_needle('files', args['runbook'])
        files, name = runbook_files(local_runbook)
        plan = None
        if args['plan']:
            if args['vars'] or args['vars_files']:
                raise AnsibleError('a reviewed plan carries its inputs: give `plan` without `vars` and `vars_files` '
                                   '(secrets still come from `secrets`)')
            plan = reviewed_plan(self._find_needle('files', args['plan']))
            uploads = plan_uploads(plan, local_runbook, files)
        else:
            root = os.path.commonpath([os.path.dirname(f) for f in files])
            uploads = [(f, 'files/' + os.path.relpath(f, root).replace(os.sep, '/')) for f in files]
        if args['allowed_signers']:
            uploads.append((self._find_needle('files', args['allowed_signers']), 'trust/allowed_signers'))
        for i, vars_file in enumerate(args['vars_files']):
            local = self._find_needle('files', vars_file)
            uploads.append((local, 'vars/%d-%s' % (i + 1, os.path.basename(local))))

        # By default each inventory host has its own state folder: two inventory hosts on one
        # machine (two sites served by one server, or a test bed) must not share journals and
        # locks, or one would continue, or be refused by, the other's run.
        state_dir = args['state_dir'] or host.join('.runbook', 'hosts', path_safe(task_vars.get('inventory_hostname')))
        if not host.isabs(state_dir):
            state_dir = host.join(self._remote_expand_user('~'), state_dir)

        # Everything goes to Ansible's temporary folder first; a real run then puts it where
        # the next task finds it again (so that it continues the same run).
        tmp = self._connection._shell.tmpdir or self._make_tmp_path()
        host.upload(tmp, uploads)
        check = bool(self._task.check_mode)
        base = tmp if check else host.join(state_dir, 'ansible', name)
        if not check:
            host.install(tmp, base, [rel for _local, rel in uploads])
        remote = {rel: host.join(base, *rel.split('/')) for _local, rel in uploads}
        runbook_path = remote[uploads[0][1]]
        cwd = None

        if plan and not check:
            # The engine finds the runbook where the plan names it, from the folder the plan was
            # made in: the files were laid out so under `work/`.
            cwd = host.join(base, 'work')
            argv = [args['binary'], 'run', '--plan', remote['plan/' + plan['name']], '--format', 'json',
                    '--state-dir', state_dir]
        else:
            argv = [args['binary'], 'run', runbook_path, '--format', 'json', '--state-dir', state_dir]
        if plan and check:
            # Check mode predicts the runbook with the reviewed inputs (approvals are checked
            # when it runs).
            for key, value in plan['inputs'].items():
                argv += ['--var', '%s=%s' % (key, input_text(value))]
        if check:
            argv.append('--dry-run')
        else:
            argv.append('--yes')
            argv.append('--fresh' if args['fresh'] else '--continue')
        if not args['force']:
            argv.append('--skip-if-succeeded')
        report = None
        if args['report'] and not check:
            report = host.join(base, 'report.xml')
            argv += ['--report', report]
        for option in ('on_failure', 'durability'):
            if args[option] and not check:
                argv += ['--' + option.replace('_', '-'), args[option]]
        if not check:
            if args['require_approvals'] is not None:
                argv += ['--require-approvals', str(args['require_approvals'])]
            if args['allowed_signers']:
                argv += ['--allowed-signers', remote['trust/allowed_signers']]
        for rel in [rel for _local, rel in uploads if rel.startswith('vars/')]:
            argv += ['--vars', remote[rel]]
        for key, value in (args['vars'] or {}).items():
            argv += ['--var', '%s=%s' % (key, input_text(value))]
        stdin = None
        if secrets:
            argv += ['--secrets-from', '-']
            stdin = json.dumps({k: input_text(v) for k, v in secrets.items()})

        rc, stdout, stderr = host.execute(argv, stdin, cwd)
        if rc is None:
            return dict(failed=True, msg=stderr, exit_code=None, steps=[], state_dir=state_dir)
        if check:
            out = check_result(rc, stdout, stderr)
        else:
            out = run_result(rc, stdout, stderr)
            if out.get('run_id') and not out['already_done']:
                out['steps'] = self._every_step(host, args['binary'], state_dir, out)
                if report:
                    self._fetch_report(report, args['report'], out)
            if args['evidence'] and out.get('run_id'):
                self._fetch_evidence(host, args['binary'], state_dir, host.join(base, 'evidence.zip'),
                                     args['evidence'], out)
        if rc not in (0, 1, 2, 3, 130):
            out['failed'] = True
            out['msg'] = 'could not run `%s` on the host (exit code %s): %s' % (
                args['binary'], rc, tail(stderr, 5) or tail(stdout, 5))
        out['exit_code'] = rc
        out['stderr_tail'] = tail(stderr, TAIL_LINES)
        out['state_dir'] = state_dir
        return out

    def _every_step(self, host, binary, state_dir, out):
        """Every step of the run, from the engine's record of it: those an earlier task did,
        those this one did, those never reached."""
        rc, stdout, _stderr = host.execute([binary, 'status', out['run_id'], '--format', 'json', '--state-dir', state_dir])
        try:
            record = json.loads(stdout)[0] if rc == 0 else None
        except (ValueError, IndexError, KeyError, TypeError):
            record = None
        if not isinstance(record, dict):
            return out['steps']
        this_task = {s['id']: s for s in out['steps']}
        steps = []
        for s in record.get('steps', []):
            step = dict(
                id=s['step'],
                outcome=STATE_NAMES.get(s['state'], s['state']),
                duration_ms=s.get('duration_ms'),
                error=s.get('error'),
                this_task=s['step'] in this_task,
                stdout_tail=s.get('stdout_tail') or None,
                stderr_tail=s.get('stderr_tail') or None,
            )
            steps.append(step)
        for step_id in record.get('not_reached', []):
            steps.append(dict(id=step_id, outcome='not_run', duration_ms=None, error=None, this_task=False))
        return steps

    def _fetch_evidence(self, host, binary, state_dir, remote, local, out):
        """The run's evidence bundle (`runbook evidence`), made on the host and fetched."""
        rc, _stdout, stderr = host.execute([binary, 'evidence', out['run_id'], '--out', remote, '--state-dir', state_dir])
        if rc != 0:
            out['failed'] = True
            out['msg'] = 'the evidence of run %s could not be made: %s' % (out['run_id'], tail(stderr, 5))
            return
        local = self._loader.path_dwim(local)
        os.makedirs(os.path.dirname(local) or '.', exist_ok=True)
        self._connection.fetch_file(remote, local)
        out['evidence'] = local

    def _fetch_report(self, remote, local, out):
        local = self._loader.path_dwim(local)
        try:
            os.makedirs(os.path.dirname(local) or '.', exist_ok=True)
            self._connection.fetch_file(remote, local)
            out['report'] = local
        except Exception as e:  # a report is a by-product: the run's result stands
            out.setdefault('warnings', []).append('the JUnit report could not be fetched: %s' % to_text(e))


class Host(object):
    """What this plugin does on a host, for either family of systems."""

    def __init__(self, action, task_vars):
        self.action = action
        self.task_vars = task_vars
        self.shell = action._connection._shell
        self.windows = bool(getattr(self.shell, '_IS_WINDOWS', False))

    def join(self, *parts):
        return self.shell.join_path(*parts) if self.windows else posixpath.join(*parts)

    def isabs(self, path):
        return ntpath.isabs(path) if self.windows else posixpath.isabs(path)

    def upload(self, tmp, uploads):
        targets = [self.join(tmp, *rel.split('/')) for _local, rel in uploads]
        dirs = sorted({self.dirname(t) for t in targets})
        self.mkdirs(dirs, sudoable=False)
        for (local, _rel), target in zip(uploads, targets):
            self.action._transfer_file(local, target)
        if not self.windows:
            self.action._fixup_perms2([tmp] + dirs + targets, execute=True)

    def install(self, tmp, base, rels):
        """Puts the uploaded files at their place under the state folder, as the user the
        engine runs as."""
        pairs = [(self.join(tmp, *rel.split('/')), self.join(base, *rel.split('/'))) for rel in rels]
        dirs = sorted({self.dirname(dst) for _src, dst in pairs})
        if self.windows:
            lines = ["$ErrorActionPreference = 'Stop'"]
            lines += ["$null = New-Item -Force -ItemType Directory -Path %s" % ps_quote(d) for d in dirs]
            lines += ["Copy-Item -Force -LiteralPath %s -Destination %s" % (ps_quote(s), ps_quote(d)) for s, d in pairs]
            self.script('\n'.join(lines), 'could not put the runbook files under %s' % base)
        else:
            cmd = ' && '.join(['mkdir -p -- ' + ' '.join(shlex.quote(d) for d in dirs)]
                              + ['cp -f -- %s %s' % (shlex.quote(s), shlex.quote(d)) for s, d in pairs])
            self.command(cmd, 'could not put the runbook files under %s' % base)

    def mkdirs(self, dirs, sudoable):
        if self.windows:
            lines = ["$ErrorActionPreference = 'Stop'"]
            lines += ["$null = New-Item -Force -ItemType Directory -Path %s" % ps_quote(d) for d in dirs]
            self.script('\n'.join(lines), 'could not make folders on the host', sudoable)
        else:
            self.command('mkdir -p -- ' + ' '.join(shlex.quote(d) for d in dirs), 'could not make folders on the host',
                         sudoable)

    def dirname(self, path):
        return ntpath.dirname(path) if self.windows else posixpath.dirname(path)

    def command(self, cmd, what, sudoable=True):
        res = self.action._low_level_execute_command(cmd, sudoable=sudoable)
        if res.get('rc') != 0:
            raise AnsibleError('%s: %s' % (what, to_text(res.get('stderr') or res.get('stdout')).strip()))

    def script(self, text, what, sudoable=True):
        self.command(self.shell._encode_script(text), what, sudoable)

    def execute(self, argv, stdin=None, cwd=None):
        """Runs the engine (in the folder `cwd`, when given): (exit code, stdout, stderr); exit
        code None when it could not be started at all (stderr then says why)."""
        if self.windows:
            return self._execute_windows(argv, stdin, cwd)
        cmd = ' '.join(shlex.quote(a) for a in argv)
        if cwd:
            cmd = 'cd %s && %s' % (shlex.quote(cwd), cmd)
        res = self.action._low_level_execute_command(cmd, in_data=to_bytes(stdin) if stdin is not None else None)
        return res.get('rc'), to_text(res.get('stdout', '')), to_text(res.get('stderr', ''))

    def _execute_windows(self, argv, stdin, cwd=None):
        module_args = dict(argv=argv, output_encoding_override='utf-8')
        if cwd:
            module_args['chdir'] = cwd
        if stdin is not None:
            module_args['stdin'] = stdin
        task = self.action._task
        no_log = task.no_log
        # The module's arguments carry the secrets (as its standard input): nothing of them may
        # be logged, on the host (its event log) or here.
        task.no_log = True if stdin is not None else no_log
        try:
            res = self.action._execute_module(module_name='ansible.windows.win_command', module_args=module_args,
                                              task_vars=self.task_vars)
        finally:
            task.no_log = no_log
        if 'rc' not in res:
            msg = to_text(res.get('msg', 'the engine could not be started'))
            if 'win_command' in msg and ('not found' in msg or 'could not' in msg.lower()):
                msg += ' (Windows hosts need the ansible.windows collection on the controller: ' \
                       'ansible-galaxy collection install ansible.windows)'
            return None, '', msg
        return res['rc'], to_text(res.get('stdout', '')), to_text(res.get('stderr', ''))


# ---- reading the engine's answers -----------------------------------------------------------

def events(stdout):
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith('{'):
            try:
                yield json.loads(line)
            except ValueError:
                continue


def run_result(rc, stdout, stderr):
    """The task's result from `run --format json`: one JSON event a line."""
    out = dict(changed=False, failed=False, resumed=False, already_done=False, outcome=None, steps=[])
    steps = {}
    lines = {}
    failed_step = None
    for e in events(stdout):
        kind = e.get('event')
        if kind in ('run_started', 'run_resumed', 'already_done'):
            out['run_id'] = e.get('run_id')
            out['journal'] = e.get('journal')
            out['resumed'] = kind == 'run_resumed'
            if kind == 'already_done':
                out['already_done'] = True
                out['outcome'] = 'already_done'
                out['steps'] = [dict(id=s['step'], outcome=STATE_NAMES.get(s['state'], s['state']),
                                     duration_ms=s.get('duration_ms'), error=s.get('error'), this_task=False,
                                     stdout_tail=s.get('stdout_tail'), stderr_tail=s.get('stderr_tail'))
                                for s in e.get('steps', [])]
        elif kind == 'output':
            lines.setdefault(e.get('step'), {}).setdefault(e.get('stream'), []).append(e.get('line', ''))
        elif kind == 'step_finished':
            step = dict(id=e['step'], outcome=e.get('outcome'), duration_ms=e.get('duration_ms'),
                        error=e.get('error'), this_task=True)
            steps[e['step']] = step
            if e.get('outcome') == 'done':
                out['changed'] = True
            if e.get('outcome') == 'failed':
                failed_step = step
        elif kind == 'run_finished':
            out['outcome'] = e.get('outcome')
        elif kind == 'rollback_started':
            out['rollback'] = dict(outcome=None, not_undone=[], undone=[])
        elif kind == 'undo_finished':
            rollback = out.setdefault('rollback', dict(outcome=None, not_undone=[], undone=[]))
            rollback['undone'].append(dict(id=e.get('step'), outcome=e.get('outcome'), error=e.get('error')))
            if e.get('outcome') == 'done':
                out['changed'] = True
        elif kind == 'rollback_finished':
            rollback = out.setdefault('rollback', dict(outcome=None, not_undone=[], undone=[]))
            rollback.update(outcome=e.get('outcome'), not_undone=e.get('not_undone', []))
    for step_id, step in steps.items():
        streams = lines.get(step_id, {})
        step['stdout_tail'] = '\n'.join(streams.get('stdout', [])[-TAIL_LINES:]) or None
        step['stderr_tail'] = '\n'.join(streams.get('stderr', [])[-TAIL_LINES:]) or None
    if not out['already_done']:
        out['steps'] = list(steps.values())
    if rc != 0:
        out['failed'] = True
        if rc == 1 and failed_step is not None:
            out['msg'] = 'step %s failed: %s' % (failed_step['id'], failed_step['error'] or 'see its output')
        else:
            out['msg'] = engine_message(stderr) or 'runbook exited with code %s' % rc
            if rc == 3 and '--fresh' in out['msg']:
                out['msg'] += '\n(in this task, `fresh: true` starts over)'
        rollback = out.get('rollback')
        if rollback:
            out['msg'] += '; the run was rolled back (%s)' % (rollback.get('outcome') or 'unfinished')
    return out


def check_result(rc, stdout, stderr):
    """The task's result in check mode, from `run --dry-run --format json`: the plan as one JSON
    document, or an `already_done` event."""
    try:
        doc = json.loads(stdout) if stdout.strip() else None
    except ValueError:
        doc = None
    if isinstance(doc, dict) and doc.get('event') == 'already_done':
        out = run_result(rc, stdout, stderr)
        out['steps'] = [dict(s, this_task=False) for s in out['steps']]
        return out
    out = dict(changed=False, failed=False, resumed=False, already_done=False, steps=[])
    if not isinstance(doc, dict) or 'steps' not in doc:
        out.update(failed=True, outcome=None,
                   msg=engine_message(stderr) or 'runbook exited with code %s and printed no plan' % rc)
        return out
    for s in doc['steps']:
        verdict = s.get('verdict')
        out['steps'].append(dict(id=s.get('id'), outcome=verdict, action=s.get('action'), error=s.get('reason'),
                                 duration_ms=None, this_task=True))
        if verdict in CHANGING_VERDICTS:
            out['changed'] = True
    out['outcome'] = 'would_fail' if doc.get('would_fail') else 'would_succeed'
    if doc.get('would_fail') or rc != 0:
        failing = [s for s in out['steps'] if s['outcome'] == 'would_fail']
        out['failed'] = True
        out['msg'] = ('step %s would fail: %s' % (failing[0]['id'], failing[0]['error']) if failing
                      else engine_message(stderr) or 'runbook exited with code %s' % rc)
    return out


def engine_message(stderr):
    """The engine's own words: its error and what follows (hints, the differences)."""
    text = to_text(stderr).strip()
    if not text:
        return ''
    at = text.find('error:')
    return text[at:] if at >= 0 else tail(text, 10)


# ---- the runbook's files --------------------------------------------------------------------

def runbook_files(path):
    """The runbook and every runbook it includes (transitively), as absolute controller paths,
    the runbook first; and the runbook's name."""
    if yaml is None:
        raise AnsibleError('reading the runbook needs PyYAML on the controller')
    first = os.path.realpath(path)
    files, todo, name = [], [first], None
    while todo:
        current = todo.pop(0)
        if current in files:
            continue
        if len(files) >= MAX_INCLUDES:
            raise AnsibleError('%s includes more than %d runbooks' % (path, MAX_INCLUDES))
        files.append(current)
        try:
            with open(current, 'rb') as f:
                doc = yaml.safe_load(decode(f.read()))
        except (OSError, ValueError, yaml.YAMLError):
            # Sent as it is: the engine reports what is wrong with it, with file, line and column.
            continue
        if not isinstance(doc, dict):
            continue
        if current == first and isinstance(doc.get('name'), str):
            name = doc['name']
        for include in includes(doc):
            target = os.path.realpath(os.path.join(os.path.dirname(current), include))
            if not os.path.isfile(target):
                raise AnsibleError('%s includes %s, which is not on the controller (%s)' % (current, include, target))
            todo.append(target)
    if not name or not all(c.isalnum() or c in '-_' for c in name):
        name = os.path.splitext(os.path.basename(first))[0]
    return files, name


def reviewed_plan(path):
    """A saved plan (`runbook plan --out`) on the controller, with its approvals beside it."""
    try:
        with open(path, 'rb') as f:
            doc = json.loads(decode(f.read()))
    except (OSError, ValueError) as e:
        raise AnsibleError('%s is not a saved plan: %s' % (path, to_text(e)))
    if not isinstance(doc, dict) or not isinstance(doc.get('path'), str) or not isinstance(doc.get('inputs'), dict):
        raise AnsibleError('%s is not a saved plan (written by `runbook plan FILE --out PLAN`)' % path)
    folder = path + '.approvals'
    approvals = sorted(n for n in os.listdir(folder) if n.endswith(('.sig', '.comment'))) if os.path.isdir(folder) else []
    return dict(local=path, name=os.path.basename(path), path=doc['path'], inputs=doc['inputs'],
                approvals=[(os.path.join(folder, n), n) for n in approvals])


def plan_uploads(plan, local_runbook, files):
    """The files to send for a reviewed plan: the plan and its approvals under `plan/`, and
    the runbook files under `work/` laid out as the plan names them (its `path` is relative to
    the folder it was made in), so that the engine finds them from `work/`."""
    named = plan['path'].replace('\\', '/')
    if posixpath.isabs(named) or ntpath.isabs(named) or named.startswith('../'):
        raise AnsibleError('the plan %s names its runbook as %s; make the plan from the folder above the runbook, '
                           'with a relative path (runbook plan runbooks/x.yaml --out PLAN)' % (plan['local'], named))
    here = posixpath.dirname(posixpath.normpath(named))
    uploads = []
    for f in files:
        rel = os.path.relpath(f, os.path.dirname(local_runbook)).replace(os.sep, '/')
        at = posixpath.normpath(posixpath.join(here, rel))
        if at.startswith('../') or at == '..':
            raise AnsibleError('%s (included) lies outside the folder the plan %s was made in' % (f, plan['local']))
        uploads.append((f, 'work/' + at))
    uploads.append((plan['local'], 'plan/' + plan['name']))
    uploads += [(local, 'plan/%s.approvals/%s' % (plan['name'], n)) for local, n in plan['approvals']]
    return uploads


def includes(doc):
    for step in doc.get('steps') or []:
        if isinstance(step, dict) and isinstance(step.get('include'), dict):
            target = step['include'].get('runbook')
            if isinstance(target, str) and target:
                yield target


def decode(data):
    """Text of a YAML file as the engine reads it: UTF-8 (with or without a BOM), UTF-16 or
    UTF-32 with a BOM."""
    for bom, codec in ((codecs.BOM_UTF32_LE, 'utf-32'), (codecs.BOM_UTF32_BE, 'utf-32'),
                       (codecs.BOM_UTF8, 'utf-8-sig'), (codecs.BOM_UTF16_LE, 'utf-16'),
                       (codecs.BOM_UTF16_BE, 'utf-16')):
        if data.startswith(bom):
            return data.decode(codec)
    return data.decode('utf-8')


# ---- small helpers --------------------------------------------------------------------------

def input_text(value):
    """An input's value as the engine reads it from `--var` and JSON strings."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if value is None:
        return ''
    return to_text(value)


def secret_texts(secrets):
    return {input_text(v) for v in secrets.values() if input_text(v)}


def mask(value, hidden):
    """`value` with every secret replaced, however deep."""
    if not hidden:
        return value
    if isinstance(value, dict):
        return dict((k, mask(v, hidden)) for k, v in value.items())
    if isinstance(value, list):
        return [mask(v, hidden) for v in value]
    if isinstance(value, str):
        for secret in sorted(hidden, key=len, reverse=True):
            value = value.replace(secret, MASK)
        return value
    return value


def tail(text, lines):
    return '\n'.join(to_text(text).rstrip('\n').splitlines()[-lines:])


def path_safe(name):
    """An inventory host name as one folder name on any system."""
    text = to_text(name or 'host')
    return ''.join(c if c.isalnum() or c in '._-' else '_' for c in text).strip('.') or 'host'


def ps_quote(text):
    """A PowerShell single-quoted string."""
    return "'%s'" % to_text(text).replace("'", "''")
