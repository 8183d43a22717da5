use crate::support::Test;

const RB: &str = r#"runbook: 1
name: demo
title: A demo
description: |
  Shows things.
inputs:
  install_dir: { description: Where it lives, default: 'C:/Apex One' }
  build: { type: int, description: Server build }
  password: { secret: true, default: hunter2 }
  edition: { type: choice, choices: [apex-one, officescan], default: apex-one }
steps:
  - id: hello
    name: Say hello
    log: 'hello {{ install_dir }}'
  - id: maybe
    when: build >= 8378
    mkdir: /tmp/x
"#;

#[test]
fn show_describes_the_runbook() {
    Test::new()
        .file("rb.yaml", RB)
        .args(["show", "rb.yaml"])
        .stderr_contains(["warning: the secret input `password` has a default", "default: **** }\n"])
        .stdout(
            "demo\n  A demo\n\n  Shows things.\n\nInputs:\n  install_dir (string, default: C:/Apex One)\n      Where it lives\n  build (int, required)\n      Server build\n  password (string, secret, has a default)\n  edition (choice, default: apex-one, choices: apex-one, officescan)\n\nSteps:\n   1. hello                Say hello\n   2. maybe                mkdir /tmp/x\n      when: build >= 8378\n",
        )
        .run();
}

#[test]
fn explain_inputs_names_each_layer_and_masks_secrets() {
    Test::new()
        .file("rb.yaml", RB)
        .file("site.yaml", "build: 8000\ninstall_dir: D:/Apex\n")
        .env("RUNBOOK_INPUT_BUILD", "8400")
        .args(["show", "rb.yaml", "--explain-inputs", "--vars", "site.yaml", "--var", "edition=officescan"])
        .stderr_contains(["warning: the secret input `password` has a default"])
        .stdout_contains([
            "Input values:\n",
            "  install_dir  D:/Apex  (--vars site.yaml)\n",
            "  build        8400  (environment RUNBOOK_INPUT_BUILD)\n",
            "  password     ****  (default)\n",
            "  edition      officescan  (--var)\n",
        ])
        .run();
}
