//! Runs a policy's `test` blocks against its own engine.

use crate::model::{Action, Policy, TestCase};
use crate::request::{Decision, Verdict};

/// One test's result.
#[derive(Clone, Debug)]
pub struct TestOutcome<'p> {
    pub case: &'p TestCase,
    pub decision: Decision,
    pub passed: bool,
}

/// A fixed instant for tests, so that results never depend on the clock.
const TEST_NOW: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z

/// Runs every test block, in policy order.
pub fn run_tests(policy: &Policy) -> Vec<TestOutcome<'_>> {
    policy
        .tests
        .iter()
        .map(|case| {
            let decision = match &case.command {
                None => {
                    policy
                        .decide_session(&case.principal, &case.resource, TEST_NOW)
                        .decision
                }
                Some(command) => decide_in_session(policy, case, command),
            };
            let passed = Action::from(decision.verdict) == case.expect
                && case
                    .expect_rule
                    .as_ref()
                    .is_none_or(|r| r == decision.rule.name());
            TestOutcome {
                case,
                decision,
                passed,
            }
        })
        .collect()
}

/// A command can only run inside a session: if the session itself would be
/// refused, that refusal is the answer.
fn decide_in_session(policy: &Policy, case: &TestCase, command: &crate::Command) -> Decision {
    let session = policy
        .decide_session(&case.principal, &case.resource, TEST_NOW)
        .decision;
    if session.verdict == Verdict::Deny {
        return session;
    }
    policy.decide_command(&case.principal, &case.resource, command)
}
