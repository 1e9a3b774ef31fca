//! Bounds on untrusted text, checked before any parser sees it, and bounded excerpts of
//! untrusted text that is stored or sent on (pure).
//!
//! Pipeline files: a real one is about 1 KB and nests 3 levels. `serde_yaml` (libyaml) takes
//! time quadratic in the nesting depth (80 KB of nested flow collections took 16–22 s), so a
//! definition is refused above [`MAX_DEFINITION_BYTES`] or [`MAX_DEFINITION_DEPTH`] by a single
//! linear scan first. `serde_json` keeps its default recursion limit of 128 (the
//! `unbounded_depth` feature is off), `toml` its own, so no parser recurses deeper than that.

use super::execution::Commit;

/// Largest pipeline definition accepted (any format).
pub const MAX_DEFINITION_BYTES: usize = 64 * 1024;
/// Deepest nesting of a pipeline definition: flow collections (`[`, `{`), YAML block
/// indentation levels and `- ` / `? ` indicators together.
pub const MAX_DEFINITION_DEPTH: usize = 16;

/// Why a definition was refused before parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextLimitError {
    #[error("the definition is {0} bytes; at most {MAX_DEFINITION_BYTES} are allowed")]
    TooLarge(usize),
    #[error("line {0}: nested more than {MAX_DEFINITION_DEPTH} levels deep")]
    TooDeep(usize),
}

/// One pass over the text, O(length), constant memory apart from the indentation stack (at most
/// [`MAX_DEFINITION_DEPTH`] entries). Quotes and comments are followed so that brackets inside
/// strings (`"{main,dev}"`) do not count. `yaml` adds block indentation to the depth.
pub fn check_definition_text(text: &str, yaml: bool) -> Result<(), TextLimitError> {
    if text.len() > MAX_DEFINITION_BYTES {
        return Err(TextLimitError::TooLarge(text.len()));
    }
    let mut flow = 0usize;
    let mut indents: Vec<usize> = Vec::new();
    let mut quote: Option<char> = None;
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        let mut chars = line.char_indices().peekable();
        let mut block = 0usize;
        if yaml && quote.is_none() && flow == 0 {
            let trimmed = line.trim_start_matches(' ');
            let indent = line.len() - trimmed.len();
            if !trimmed.is_empty() && !trimmed.starts_with('#') {
                while indents.last().is_some_and(|&top| top >= indent) {
                    indents.pop();
                }
                indents.push(indent);
                // `- - - x` and `? ? x` open one level each on the same line
                let mut rest = trimmed;
                while let Some(r) = rest.strip_prefix("- ").or_else(|| rest.strip_prefix("? ")) {
                    block += 1;
                    rest = r.trim_start_matches(' ');
                }
                if indents.len() + block > MAX_DEFINITION_DEPTH {
                    return Err(TextLimitError::TooDeep(lineno));
                }
            }
        }
        let mut prev_blank = true;
        while let Some((_, c)) = chars.next() {
            match quote {
                Some('"') => match c {
                    '\\' => {
                        chars.next();
                    }
                    '"' => quote = None,
                    _ => {}
                },
                Some(q) => {
                    if c == q {
                        // YAML/TOML single quotes: '' is an escaped quote
                        if chars.peek().is_some_and(|&(_, n)| n == q) {
                            chars.next();
                        } else {
                            quote = None;
                        }
                    }
                }
                None => match c {
                    '"' | '\'' => quote = Some(c),
                    '#' if prev_blank => break,
                    '[' | '{' => {
                        flow += 1;
                        if flow + indents.len() + block > MAX_DEFINITION_DEPTH {
                            return Err(TextLimitError::TooDeep(lineno));
                        }
                    }
                    ']' | '}' => flow = flow.saturating_sub(1),
                    _ => {}
                },
            }
            prev_blank = c == ' ' || c == '\t' || c == ',' || c == '[' || c == '{';
        }
        // YAML single-quoted and plain scalars may span lines; TOML/JSON strings do not (TOML's
        // multi-line strings use triple quotes, which this scan reads as open and closed quotes)
        if !yaml && quote == Some('\'') {
            quote = None;
        }
    }
    Ok(())
}

/// Stored and sent commit text, in bytes: a push of any size that is accepted is stored as an
/// execution item far below DynamoDB's 400 KB, and its notices far below SNS's 256 KB.
pub const MAX_COMMIT_MESSAGE_BYTES: usize = 4096;
pub const MAX_AUTHOR_BYTES: usize = 256;
pub const MAX_REFERENCE_BYTES: usize = 1024;
/// A longer link is dropped (a cut link would point elsewhere).
pub const MAX_COMMIT_URL_BYTES: usize = 2048;
/// A failure reason from an AWS event (CodeBuild phase context, ECS deployment reason).
pub const MAX_REASON_BYTES: usize = 2048;

/// The commit as stored: message, author and reference cut to excerpts with a marker, an
/// over-long link dropped. The SHA is validated by the decoders (40 hex digits).
pub fn bounded_commit(commit: Commit) -> Commit {
    Commit {
        sha: commit.sha,
        reference: excerpt(&commit.reference, MAX_REFERENCE_BYTES),
        author: commit.author.map(|a| excerpt(&a, MAX_AUTHOR_BYTES)),
        message: commit
            .message
            .map(|m| excerpt(&m, MAX_COMMIT_MESSAGE_BYTES)),
        url: commit.url.filter(|u| u.len() <= MAX_COMMIT_URL_BYTES),
    }
}

/// SNS refuses messages over 256 KiB (262,144 bytes, attributes included): the notifier cuts
/// any body above this as a last resort (notices are a few KB; see [`bounded_commit`]).
pub const MAX_NOTICE_BYTES: usize = 240 * 1024;
/// SNS subjects: at most 100 printable ASCII characters, no line breaks.
pub const MAX_SUBJECT_CHARS: usize = 100;

/// `text` as one line of printable ASCII (anything else becomes a space), at most `max` chars.
pub fn ascii_line(text: &str, max: usize) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                ' '
            }
        })
        .take(max)
        .collect()
}

/// At most `max` bytes of `text` (cut at a character boundary) followed by
/// `… (truncated, N bytes)` when it was longer; N is the original length.
pub fn excerpt(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… (truncated, {} bytes)", &text[..end], text.len())
}

/// SNS's limit for a whole message: with `MessageStructure=json`, the JSON document.
pub const MAX_SNS_MESSAGE_BYTES: usize = 256 * 1024;

/// The `MessageStructure=json` message of a notice: the text for `default` (every protocol
/// without its own key, e.g. the sandbox's SQS capture) and `email`, the chat JSON for `https`
/// (Amazon Q Developer in chat applications subscribes topics over HTTPS). Always under
/// [`MAX_SNS_MESSAGE_BYTES`] with room for the envelope: the text gives way first (it appears
/// twice, JSON-escaped), then the chat message is replaced by a short one.
pub fn structured_message(text: &str, chat: &str) -> String {
    let budget = MAX_SNS_MESSAGE_BYTES - 1024;
    let build = |text: &str, chat: &str| {
        serde_json::json!({ "default": text, "email": text, "https": chat }).to_string()
    };
    let mut chat = chat.to_string();
    if chat.len() > budget / 4 {
        chat = serde_json::json!({
            "version": "1.0",
            "source": "custom",
            "content": {"textType": "client-markdown", "description": "A shipgate notice too large for chat; see the e-mail or `shipgate show`."}
        })
        .to_string();
    }
    let mut limit = text.len();
    loop {
        let body = excerpt(text, limit);
        let message = build(&body, &chat);
        if message.len() <= budget || limit == 0 {
            return message;
        }
        // shrink by the overflow, counted in the escaped text (which appears twice)
        let over = message.len() - budget;
        limit = limit.saturating_sub(over / 2 + 64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_messages_stay_under_the_sns_limit() {
        // worst case: text that doubles when JSON-escaped, far over the limit
        let text = "\"\n".repeat(200 * 1024);
        let chat = "{\"version\":\"1.0\"}";
        let m = structured_message(&text, chat);
        assert!(m.len() <= MAX_SNS_MESSAGE_BYTES, "{}", m.len());
        let v: serde_json::Value = serde_json::from_str(&m).unwrap();
        assert_eq!(v["default"], v["email"]);
        assert_eq!(v["https"], chat);
        assert!(v["default"].as_str().unwrap().contains("truncated"));
        // at the limit: a text just under it is kept whole when it fits
        let fits = "x".repeat((MAX_SNS_MESSAGE_BYTES - 1024 - 200) / 2);
        let m = structured_message(&fits, chat);
        assert!(m.len() <= MAX_SNS_MESSAGE_BYTES);
        let v: serde_json::Value = serde_json::from_str(&m).unwrap();
        assert_eq!(v["default"].as_str().unwrap(), fits);
        // an oversized chat message is replaced, never cut into invalid JSON
        let big_chat = serde_json::json!({"x": "y".repeat(200 * 1024)}).to_string();
        let m = structured_message("hi", &big_chat);
        let v: serde_json::Value = serde_json::from_str(&m).unwrap();
        let chat: serde_json::Value = serde_json::from_str(v["https"].as_str().unwrap()).unwrap();
        assert_eq!(chat["source"], "custom");
        assert!(m.len() <= MAX_SNS_MESSAGE_BYTES);
    }

    #[test]
    fn real_files_pass() {
        let yaml = "name: hello\nsource:\n  github: acme/hello\nbranches: [\"{main,dev}\", 'a[b']\ntest: { cluster: apps, service: hello-test }\n# a [ comment {\n";
        assert_eq!(check_definition_text(yaml, true), Ok(()));
        let toml =
            "name = \"hello\"\nbranches = [\"{main,dev}\", 'x[']\n[test]\ncluster = \"apps\" # [\n";
        assert_eq!(check_definition_text(toml, false), Ok(()));
        assert_eq!(
            check_definition_text(include_str!("../../../examples/pipeline.toml"), false),
            Ok(())
        );
    }

    #[test]
    fn deep_and_large_documents_are_refused_in_linear_time() {
        // the quadratic cases: 80 KB and 200 KB of nested flow collections
        for n in [80_000usize, 200_000] {
            let nested = "[".repeat(n / 2) + &"]".repeat(n / 2);
            assert_eq!(
                check_definition_text(&nested, true),
                Err(TextLimitError::TooLarge(n))
            );
        }
        let nested = "a: ".to_string() + &"[".repeat(17) + &"]".repeat(17);
        assert_eq!(
            check_definition_text(&nested, true),
            Err(TextLimitError::TooDeep(1))
        );
        let block: String = (0..20)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        assert_eq!(
            check_definition_text(&block, true),
            Err(TextLimitError::TooDeep(17))
        );
        let dashes = "- ".repeat(20) + "x";
        assert_eq!(
            check_definition_text(&dashes, true),
            Err(TextLimitError::TooDeep(1))
        );
        let json = "{\"a\":".repeat(20) + "1" + &"}".repeat(20);
        assert_eq!(
            check_definition_text(&json, false),
            Err(TextLimitError::TooDeep(1))
        );
        // brackets in strings and comments do not count
        let quoted = format!(
            "a: \"{}\"\nb: '{}' # {}\n",
            "[".repeat(100),
            "{".repeat(100),
            "[".repeat(100)
        );
        assert_eq!(check_definition_text(&quoted, true), Ok(()));
    }

    #[test]
    fn commits_are_stored_as_bounded_excerpts() {
        let c = bounded_commit(Commit {
            sha: "a".repeat(40),
            reference: "main".into(),
            author: Some("x".repeat(10_000)),
            message: Some("m".repeat(420_000)),
            url: Some(format!("https://github.com/{}", "u".repeat(3000))),
        });
        let m = c.message.unwrap();
        assert!(m.len() < MAX_COMMIT_MESSAGE_BYTES + 40, "{}", m.len());
        assert!(m.ends_with("… (truncated, 420000 bytes)"));
        assert!(c.author.unwrap().ends_with("(truncated, 10000 bytes)"));
        assert_eq!(c.url, None);
        assert_eq!(c.reference, "main");
    }

    #[test]
    fn excerpts_are_bounded_and_marked() {
        assert_eq!(excerpt("short", 10), "short");
        let long = "é".repeat(1000);
        let e = excerpt(&long, 101);
        assert!(e.starts_with(&"é".repeat(50)));
        assert!(e.ends_with("… (truncated, 2000 bytes)"), "{e}");
        assert!(e.len() <= 101 + "… (truncated, 2000 bytes)".len());
    }
}
