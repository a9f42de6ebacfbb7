//! Canonical formatting of policy files (`gwctl fmt`).
//!
//! The layout: four-space indentation, one space between entries, values
//! written as the author wrote them (quoted strings stay quoted, so a
//! reviewer never wonders whether `env:X` is a string), comments kept, and
//! exactly one blank line between top-level blocks.

/// Why a file was not formatted.
#[derive(Debug)]
pub enum FormatError {
    Syntax(kdl::KdlError),
    /// The formatter would have dropped this comment; the file is left alone.
    WouldDropComment(String),
}

/// Formats KDL text canonically. Fails when the text is not valid KDL, or
/// when formatting would lose a comment (the KDL formatter drops comments at
/// the end of a line): a formatter must never delete what a person wrote.
pub fn format(text: &str) -> Result<String, FormatError> {
    let out = format_unchecked(text).map_err(FormatError::Syntax)?;
    let kept = comments(&out);
    if let Some(lost) = comments(text).into_iter().find(|c| !kept.contains(c)) {
        return Err(FormatError::WouldDropComment(lost));
    }
    Ok(out)
}

/// The comments of a KDL text, found lexically (outside strings).
fn comments(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    let mut in_string = false;
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if in_string => {
                chars.next();
            }
            '"' => in_string = !in_string,
            '/' if !in_string => match chars.peek().map(|(_, c)| *c) {
                Some('/') => {
                    let end = text[i..].find('\n').map_or(text.len(), |n| i + n);
                    out.push(text[i..end].trim().to_owned());
                    while chars.peek().is_some_and(|(j, _)| *j < end) {
                        chars.next();
                    }
                }
                Some('*') => {
                    let end = text[i..].find("*/").map_or(text.len(), |n| i + n + 2);
                    out.push(
                        text[i..end]
                            .split_whitespace()
                            .collect::<Vec<_>>()
                            .join(" "),
                    );
                    while chars.peek().is_some_and(|(j, _)| *j < end) {
                        chars.next();
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }
    out.iter()
        .map(|c| c.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn format_unchecked(text: &str) -> Result<String, kdl::KdlError> {
    let mut doc = kdl::KdlDocument::parse_v2(text)?;
    normalize_entries(&mut doc);
    let config = kdl::FormatConfig::default();
    let mut blocks = Vec::new();
    for node in doc.nodes() {
        let mut node = node.clone();
        node.autoformat_config(&config);
        let block = node.to_string();
        let block = block.trim_matches('\n');
        // Comments written before a block belong to it; keep them, without
        // the blank lines that separated them.
        let lines: Vec<&str> = block
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.is_empty())
            .collect();
        blocks.push(lines.join("\n"));
    }
    let mut out = blocks.join("\n\n");
    let trailing = doc.format().map(|f| f.trailing.trim()).unwrap_or("");
    if !trailing.is_empty() {
        out.push_str("\n\n");
        out.push_str(trailing);
    }
    out.push('\n');
    Ok(out)
}

/// Keeps each value as written but sets the space around it to one blank,
/// unless a comment sits there (then the comment is kept, trimmed).
fn normalize_entries(doc: &mut kdl::KdlDocument) {
    for node in doc.nodes_mut() {
        for entry in node.entries_mut() {
            let Some(old) = entry.format().cloned() else {
                continue;
            };
            let comment = old.leading.trim();
            entry.set_format(kdl::KdlEntryFormat {
                value_repr: old.value_repr.clone(),
                leading: if comment.is_empty() {
                    " ".to_owned()
                } else {
                    format!(" {comment} ")
                },
                autoformat_keep: true,
                ..Default::default()
            });
        }
        if let Some(children) = node.children_mut() {
            normalize_entries(children);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_and_is_idempotent() {
        let input = "// A comment\nresource   \"a\"  kind=\"postgres\"{\naddress \"x:1\"\n  /* old */ database \"d\"\n      labels env=\"prod\"\n}\n\n\n\ngrant \"g\" {\n  groups \"sre\"\n}";
        let once = super::format(input).unwrap();
        assert_eq!(
            once,
            "// A comment\nresource \"a\" kind=\"postgres\" {\n    address \"x:1\"\n    /* old */\n    database \"d\"\n    labels env=\"prod\"\n}\n\ngrant \"g\" {\n    groups \"sre\"\n}\n"
        );
        assert_eq!(super::format(&once).unwrap(), once);
    }

    #[test]
    fn refuses_to_drop_a_trailing_comment() {
        let input = "resource \"a\" kind=\"postgres\" {\n    address \"x:1\" // the primary\n}\n";
        match super::format(input) {
            Err(super::FormatError::WouldDropComment(c)) => assert_eq!(c, "// the primary"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn comment_markers_inside_strings_are_not_comments() {
        assert_eq!(
            super::comments("a \"http://x\" // real\n"),
            vec!["// real".to_owned()]
        );
    }
}
