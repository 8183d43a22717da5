//! In-process costs: loading and validating, rendering, planning, journal appends, masking.
//! Run with `cargo bench --bench engine`; `benches/compare.sh` measures whole commands against
//! the equivalent shell script.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use runbook::compile::inputs::{InputArgs, Inputs};
use runbook::compile::runbook::Runbook;
use runbook::format::mask::Masker;

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
    let rb = runbook::compile::load(&fixture(n).path).runbook.expect("the bench runbook is valid");
    let (inputs, _) = runbook::compile::inputs::resolve(&rb, &InputArgs::default()).unwrap();
    (rb, inputs)
}

#[divan::bench(args = [10, 1000, 10000])]
fn load_and_validate(bencher: divan::Bencher, n: usize) {
    let path = &fixture(n).path;
    bencher.bench(|| runbook::compile::load(divan::black_box(path)).runbook.is_some());
}

#[divan::bench(args = [10, 1000, 10000])]
fn plan(bencher: divan::Bencher, n: usize) {
    let (rb, inputs) = loaded(n);
    let masker = Masker::new(["s3cret"]);
    let cwd = std::env::temp_dir();
    bencher.bench(|| runbook::engine::plan::Planner::plan(&rb, &inputs, &masker, cwd.clone()).unwrap().len());
}

#[divan::bench]
fn render_template(bencher: divan::Bencher) {
    use minijinja::value::Value;
    let ctx =
        Value::from(minijinja::value::Serde(serde_json::json!({"dir": "C:/Program Files (x86)/Trend Micro/Apex One"})));
    bencher.bench(|| {
        runbook::compile::template::render("{{ dir }}/PCCSRV/Admin/Utility/CertificateManager", &ctx).unwrap()
    });
}

#[divan::bench]
fn render_plain_text(bencher: divan::Bencher) {
    let ctx = minijinja::value::Value::UNDEFINED;
    bencher.bench(|| runbook::compile::template::render("CertificateManager.exe", &ctx).unwrap());
}

#[divan::bench(args = [false, true])]
fn journal_append(bencher: divan::Bencher, sync: bool) {
    use runbook::state::journal::{Journal, Record};
    let dir = tempfile::tempdir().unwrap();
    let first = Record::StepInterrupted { step: "start".into(), time: runbook::state::journal::now() };
    let mut journal = Journal::create(dir.path(), "bench", "run", Masker::new(["s3cret"]), &first).unwrap();
    let record = Record::StepStarted { step: "import".into(), attempt: 1, time: runbook::state::journal::now() };
    bencher.bench_local(|| journal.append(&record, sync).unwrap());
}

#[divan::bench(args = [1024, 1024 * 1024])]
fn mask_output(bencher: divan::Bencher, bytes: usize) {
    let masker = Masker::new(["Apex-Install-2019!", "line one\nline two"]);
    let line = "Certificate Authentication Manager has successfully imported the certificate.\n";
    let text = line.repeat(bytes / line.len() + 1);
    bencher.counter(divan::counter::BytesCount::new(text.len())).bench(|| masker.mask(divan::black_box(&text)).len());
}
