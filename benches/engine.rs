//! In-process costs: loading and validating, rendering, planning, journal appends, masking.
//! Run with `cargo bench --bench engine`; `benches/compare.sh` measures whole commands against
//! the equivalent shell script.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use runbook::{InputArgs, Inputs, Masker, Runbook};

fn main() {
    divan::main();
}

/// A runbook of `n` steps mixing the actions a real one uses.
fn runbook_text(n: usize) -> String {
    let mut s = String::from(
        "runbook: 1\nname: bench\ninputs:\n  dir: { type: path, default: /tmp/runbook-bench }\n  pw: { secret: true, default: s3cret }\nvars:\n  target: '{{ path_join(dir, \"out\") }}'\nsteps:\n",
    );
    for i in 0..n {
        match i % 4 {
            0 => s.push_str(&format!("  - id: s{i}\n    mkdir: '{{{{ target }}}}/d{i}'\n")),
            1 => s.push_str(&format!(
                "  - id: s{i}\n    write: {{ path: '{{{{ target }}}}/d{}/f.txt', content: 'step {i}' }}\n",
                i - 1
            )),
            2 => s.push_str(&format!("  - id: s{i}\n    exec: [echo, '{{{{ pw }}}}', '{i}']\n")),
            _ => s.push_str(&format!(
                "  - id: s{i}\n    when: steps.s{}.status == 'done'\n    log: 'after {{{{ steps.s{}.status }}}}'\n",
                i - 2,
                i - 3
            )),
        }
    }
    s
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn fixture(n: usize) -> &'static Fixture {
    static FIXTURES: LazyLock<std::sync::Mutex<std::collections::HashMap<usize, &'static Fixture>>> =
        LazyLock::new(Default::default);
    let mut map = FIXTURES.lock().unwrap();
    map.entry(n).or_insert_with(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("bench-{n}.yaml"));
        std::fs::write(&path, runbook_text(n)).unwrap();
        Box::leak(Box::new(Fixture { _dir: dir, path }))
    })
}

fn loaded(n: usize) -> (Arc<Runbook>, Inputs) {
    let rb = runbook::load(&fixture(n).path).runbook.expect("the bench runbook is valid");
    let (inputs, _) = runbook::resolve_inputs(&rb, &InputArgs::default()).unwrap();
    (rb, inputs)
}

#[divan::bench(args = [10, 1000, 10000])]
fn load_and_validate(bencher: divan::Bencher, n: usize) {
    let path = &fixture(n).path;
    bencher.bench(|| runbook::load(divan::black_box(path)).runbook.is_some());
}

#[divan::bench(args = [10, 1000, 10000])]
fn plan(bencher: divan::Bencher, n: usize) {
    let (rb, inputs) = loaded(n);
    let masker = Masker::new(["s3cret"]);
    let cwd = std::env::temp_dir();
    bencher.bench(|| runbook::plan(&rb, &inputs, &masker, cwd.clone()).unwrap().len());
}

/// A plan of 100 steps that are one template each (compiled once, at load; rendered by each
/// plan) against the same steps as plain text (never rendered): the cost of rendering.
#[divan::bench(args = [false, true])]
fn plan_100_logs(bencher: divan::Bencher, templates: bool) {
    let text = if templates { "'{{ dir }}/PCCSRV/Admin/Utility/CertificateManager'" } else { "CertificateManager.exe" };
    let mut yaml = String::from(
        "runbook: 1\nname: r\ninputs:\n  dir: { default: 'C:/Program Files (x86)/Trend Micro/Apex One' }\nsteps:\n",
    );
    for i in 0..100 {
        yaml.push_str(&format!("  - id: s{i}\n    log: {text}\n"));
    }
    let rb = runbook::load_text(std::path::Path::new("r.yaml"), yaml).runbook.expect("valid");
    let (inputs, _) = runbook::resolve_inputs(&rb, &InputArgs::default()).unwrap();
    let masker = Masker::default();
    let cwd = std::env::temp_dir();
    bencher.bench(|| runbook::plan(&rb, &inputs, &masker, cwd.clone()).unwrap().len());
}

#[divan::bench(args = [false, true])]
fn journal_append(bencher: divan::Bencher, sync: bool) {
    use runbook::{Durability, Journal, Record};
    let dir = tempfile::tempdir().unwrap();
    let first = Record::StepInterrupted { step: "start".into(), time: "2026-01-01T00:00:00Z".into() };
    let mut journal =
        Journal::create(dir.path(), "bench", "run", Masker::new(["s3cret"]), &first, Durability::Full).unwrap();
    let record = Record::StepStarted {
        step: "import".into(),
        attempt: 1,
        time: "2026-01-01T00:00:00Z".into(),
        backout: Default::default(),
    };
    bencher.bench_local(|| journal.append(&record, sync).unwrap());
}

#[divan::bench(args = [1024, 1024 * 1024])]
fn mask_output(bencher: divan::Bencher, bytes: usize) {
    let masker = Masker::new(["Apex-Install-2019!", "line one\nline two"]);
    let line = "Certificate Authentication Manager has successfully imported the certificate.\n";
    let text = line.repeat(bytes / line.len() + 1);
    bencher.counter(divan::counter::BytesCount::new(text.len())).bench(|| masker.mask(divan::black_box(&text)).len());
}
