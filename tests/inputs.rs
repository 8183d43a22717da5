//! Input layering and type checks, through `show --explain-inputs` and `plan`.

use crate::support::Test;

const RB: &str = r#"runbook: 1
name: inputs
inputs:
  dir: { type: path, default: /base }
  build: { type: int }
  flag: { type: bool, default: false }
  edition: { type: choice, choices: [apex-one, officescan], default: apex-one }
  host: { pattern: '[a-z]+[0-9]*', default: srv1 }
  pw: { secret: true }
steps:
  - id: a
    log: '{{ dir }} {{ build }} {{ flag }} {{ edition }} {{ host }}'
"#;

fn explain() -> Test {
    Test::new().file("rb.yaml", RB).args(["show", "rb.yaml", "--explain-inputs"])
}

#[test]
fn later_layers_win() {
    explain()
        .file("one.yaml", "dir: /one\nbuild: 1\n")
        .file("two.yaml", "dir: /two\n")
        .env("RUNBOOK_INPUT_BUILD", "2")
        .env("RUNBOOK_INPUT_PW", "s")
        .args(["--vars", "one.yaml", "--vars", "two.yaml", "--var", "flag=true"])
        .stdout_contains([
            "  dir      /two  (--vars two.yaml)\n",
            "  build    2  (environment RUNBOOK_INPUT_BUILD)\n",
            "  flag     true  (--var)\n",
            "  edition  apex-one  (default)\n",
            "  pw       ****  (environment RUNBOOK_INPUT_PW)\n",
        ])
        .run();
}

#[test]
fn a_missing_required_input_says_how_to_give_it() {
    explain()
        .env("RUNBOOK_INPUT_PW", "s")
        .code(2)
        .stderr_contains([
            "error: missing required input `build`",
            "--> rb.yaml:5:3",
            "give `--var build=...`",
            "RUNBOOK_INPUT_BUILD",
        ])
        .run();
}

#[test]
fn a_missing_secret_suggests_the_environment() {
    explain()
        .args(["--var", "build=1"])
        .code(2)
        .stderr_contains(["error: missing required input `pw`", "set RUNBOOK_INPUT_PW in the environment"])
        .run();
}

#[test]
fn bad_values_name_the_input_and_the_layer() {
    explain()
        .env("RUNBOOK_INPUT_PW", "s")
        .env("RUNBOOK_INPUT_BUILD", "latest")
        .args(["--var", "edition=xg", "--var", "host=SRV", "--var", "flag=maybe"])
        .code(2)
        .stderr_contains([
            "error: invalid value \"latest\" for input `build` (from environment RUNBOOK_INPUT_BUILD): not a whole number",
            "error: invalid value \"xg\" for input `edition` (from --var): not one of the choices (apex-one, officescan)",
            "error: invalid value \"SRV\" for input `host` (from --var): does not match the input's pattern",
            "error: invalid value \"maybe\" for input `flag` (from --var): not true or false",
        ])
        .run();
}

#[test]
fn a_bad_secret_value_is_not_shown() {
    let rb =
        "runbook: 1\nname: s\ninputs:\n  pw: { secret: true, pattern: '[0-9]+' }\nsteps:\n  - id: a\n    log: hi\n";
    let out = Test::new()
        .file("rb.yaml", rb)
        .args(["show", "rb.yaml", "--explain-inputs", "--var", "pw=letmein"])
        .code(2)
        .stderr_contains(["error: invalid value **** for input `pw` (from --var): does not match the input's pattern"])
        .run();
    assert!(!out.stderr.contains("letmein"));
}

#[test]
fn unknown_var_names_are_errors_with_a_suggestion() {
    explain()
        .env("RUNBOOK_INPUT_PW", "s")
        .args(["--var", "buidl=1"])
        .code(2)
        .stderr_contains(["error: `buidl` is not an input of `inputs`", "did you mean `build`?"])
        .run();
}

#[test]
fn a_likely_typo_in_an_input_file_is_a_warning() {
    explain()
        .env("RUNBOOK_INPUT_PW", "s")
        .file("site.yaml", "buidl: 3\nbuild: 4\nother_runbooks_input: x\n")
        .args(["--vars", "site.yaml"])
        .stderr_contains(["warning: `buidl` is not an input of `inputs`", "--> site.yaml:1:1", "did you mean `build`?"])
        .stdout_contains(["  build    4  (--vars site.yaml)\n"])
        .run();
}

#[test]
fn a_broken_input_file_points_at_the_line() {
    explain()
        .env("RUNBOOK_INPUT_PW", "s")
        .file("site.yaml", "build: 4\nbuild: 5\n")
        .args(["--vars", "site.yaml"])
        .code(2)
        .stderr_contains(["error: invalid YAML in input file: duplicate key `build`", "--> site.yaml:2:1"])
        .run();
}

#[test]
fn malformed_var_flag_is_explained() {
    explain()
        .args(["--var", "build"])
        .code(2)
        .stderr_contains(["error: `--var build` is not of the form name=value"])
        .run();
}
