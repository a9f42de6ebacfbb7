//! The prefilters must never reject raw JSON whose decoded text matches.

use super::*;

/// The raw JSON of a data string. serde_json escapes the characters used here
/// exactly as the gateway's writer does.
fn json(s: &str) -> Vec<u8> {
    serde_json::to_vec(s).unwrap()
}

/// Checks that whenever the decoded text matches, the prefilter accepts the
/// raw text, and returns which kind of prefilter was built.
#[track_caller]
fn check_regex(pattern: &str, texts: &[&str]) -> &'static str {
    let re = regex::Regex::new(pattern).unwrap();
    let p = RawPrefilter::for_regex(pattern);
    for t in texts {
        let raw = json(t);
        assert!(escapes_canonical(&raw), "{raw:?}");
        // Without a prefilter every line is decoded, which cannot miss.
        if let Some(p) = &p
            && re.is_match(t)
        {
            assert!(p.may_match(&raw), "{pattern:?} missed {t:?} in {raw:?}");
        }
    }
    match p {
        None => "none",
        Some(RawPrefilter::Literal(_)) => "literal",
        Some(RawPrefilter::Regex(_)) => "regex",
    }
}

const TEXTS: &[&str] = &[
    "found the needle here\r\n",
    "neeeedle",
    "say \"needle\"\n",
    "back\\slash needle",
    "tab\tneedle\u{1b}[0m",
    "nadel Größe needle ☃",
    "line one\nneedle at start",
    "DROP TABLE users;",
    "drop\ttable \"users\"",
    "555-1234 and 555\n1234",
    "/etc/passwd",
];

#[test]
fn regex_on_raw_bytes_when_nothing_escaped_can_match() {
    assert_eq!(check_regex("need+le", TEXTS), "regex");
    assert_eq!(check_regex("(?i)NEEDLE", TEXTS), "regex");
    assert_eq!(check_regex(r"\d{3}-\d{4}", TEXTS), "regex");
    assert_eq!(check_regex("Größe|☃", TEXTS), "regex");
    assert_eq!(check_regex("[a-z]+ TABLE [a-z]+", TEXTS), "regex");
}

#[test]
fn literals_when_the_regex_can_match_escaped_characters() {
    // `.` and `\s` match `"`, `\n` or `\t`, so the regex cannot run on the raw
    // text, but every match still starts with a raw-safe literal.
    assert_eq!(check_regex("needle.*", TEXTS), "literal");
    assert_eq!(check_regex(r"DROP\s+TABLE", TEXTS), "literal");
    assert_eq!(check_regex(r"(?i)drop\s+table", TEXTS), "regex");
    assert_eq!(check_regex(r".*needle", TEXTS), "literal");
    assert_eq!(check_regex(r"555\s1234", TEXTS), "literal");
    // Anchors depend on neighbours, which differ in raw JSON.
    assert_eq!(check_regex("^needle", TEXTS), "literal");
    assert_eq!(check_regex(r"\bneedle\b", TEXTS), "literal");
}

#[test]
fn no_prefilter_when_a_required_literal_spans_an_escape() {
    assert_eq!(check_regex("say \"needle", TEXTS), "none");
    assert_eq!(check_regex(r"back\\slash", TEXTS), "none");
    assert_eq!(check_regex("one\nneedle", TEXTS), "none");
    assert_eq!(check_regex(r"\s1234", TEXTS), "literal");
    assert_eq!(check_regex(r"\s\d+\s", TEXTS), "none");
    assert_eq!(check_regex(r"(?s).", TEXTS), "none");
    assert_eq!(check_regex("", TEXTS), "regex");
}

#[test]
fn text_prefilter_only_for_raw_safe_needles() {
    assert!(RawPrefilter::for_text("needle").is_some());
    assert!(RawPrefilter::for_text("Größe ☃").is_some());
    assert!(RawPrefilter::for_text("say \"").is_none());
    assert!(RawPrefilter::for_text("a\\b").is_none());
    assert!(RawPrefilter::for_text("one\nneedle").is_none());
    assert!(RawPrefilter::for_text("").is_none());
}

#[test]
fn escapes_from_other_writers_are_not_canonical() {
    assert!(escapes_canonical(
        br#"[0.1, "o", "a\"b\\c\n\r\t\u001b\u0000"]"#
    ));
    // An escaped backslash before `u` is a false alarm: the frame is decoded.
    assert!(!escapes_canonical(br#"[0.1, "o", "\\u0041"]"#));
    assert!(!escapes_canonical(br#"[0.1, "o", "\u0041"]"#));
    assert!(!escapes_canonical(br#"[0.1, "o", "\u00e9"]"#));
    assert!(!escapes_canonical(br#"[0.1, "o", "a\/b"]"#));
    assert!(!escapes_canonical(br#"[0.1, "o", "\ud83d\ude00"]"#));
    assert!(!escapes_canonical(br#"[0.1, "o", "\u00"]"#));
}
