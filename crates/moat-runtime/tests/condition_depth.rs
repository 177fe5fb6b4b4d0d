//! Deeply nested conditions: a rule whose condition (alone or through its macros) nests too deeply is
//! refused with an error naming the rule, never a stack overflow. Runs on the test harness's threads
//! (2 MiB stacks), smaller than a main thread's.

use moat_runtime::{Engine, Loader};

/// `a and (b or (c and (d or ...)))`: every level is a real and/or node (plain parentheses are not).
fn alternating(levels: usize, leaf: &str) -> String {
    let mut s = leaf.to_string();
    for i in 0..levels {
        let op = if i % 2 == 0 { "or" } else { "and" };
        s = format!("proc.name = p{i} {op} ({s})");
    }
    s
}

fn skipped_reason(e: &Engine, rule: &str) -> String {
    e.skipped
        .iter()
        .find(|s| s.rule == rule)
        .map(|s| s.reason.clone())
        .unwrap_or_else(|| panic!("rule '{rule}' was not refused: {:?}", e.skipped))
}

#[test]
fn a_deeply_parenthesised_condition_is_refused_by_rule_name() {
    let cond = format!(
        "{}proc.name = x{}",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    let text = format!(
        "- rule: deep parens\n  condition: '{cond}'\n  output: x\n  priority: WARNING\n\
         - rule: fine\n  condition: proc.name = y\n  output: y\n  priority: WARNING\n"
    );
    let e = Engine::from_str_for_tests(&text);
    assert!(skipped_reason(&e, "deep parens").contains("nested"));
    assert!(e.rules().iter().any(|r| r.name == "fine"));
}

#[test]
fn nesting_through_macros_is_refused_by_rule_name() {
    // 150 macros, each nesting 150 levels around the previous one: 22,500 levels once inlined.
    let mut text = String::from("- macro: m0\n  condition: proc.name = base\n");
    for i in 1..150 {
        text.push_str(&format!(
            "- macro: m{i}\n  condition: '{}'\n",
            alternating(150, &format!("m{}", i - 1))
        ));
    }
    text.push_str("- rule: deep macros\n  condition: evt.type = execve and m149\n  output: x\n  priority: WARNING\n");
    text.push_str("- rule: shallow\n  condition: evt.type = execve and m1\n  output: x\n  priority: WARNING\n");
    let e = Engine::from_str_for_tests(&text);
    let why = skipped_reason(&e, "deep macros");
    assert!(why.contains("nest"), "{why}");
    assert!(
        e.rules().iter().any(|r| r.name == "shallow"),
        "a rule within the limit still compiles: {:?}",
        e.skipped
    );

    // The same files through the k8s_audit engine.
    let k = text
        .replace(
            "priority: WARNING\n",
            "priority: WARNING\n  source: k8s_audit\n",
        )
        .replace("proc.name", "ka.user.name")
        .replace("evt.type = execve", "ka.verb = create");
    let mut l = Loader::new();
    l.add_str("k.yaml", &k).unwrap();
    let ke = l.build_k8saudit();
    let why = ke
        .skipped
        .iter()
        .find(|s| s.rule == "deep macros")
        .map(|s| s.reason.clone())
        .expect("refused by the k8s_audit engine");
    assert!(why.contains("nest"), "{why}");
    assert!(ke.rule_names().any(|n| n == "shallow"));
}
