//! Each cause is printed once. `{:#}` of an error chain prints every error's message followed by
//! its `source()`, so a thiserror message that interpolates the very field it also returns as its
//! source (`#[from]`, `#[source]`, or a field named `source`) prints that cause twice:
//! `model forward pass failed: X: X`. This test reads every thiserror type under `src/` and fails
//! on such a message, naming file, line and variant (`#[error(transparent)]` is the exception:
//! it prints the source's message only, as its own).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A message that interpolates the variant's source.
#[derive(Debug, PartialEq)]
struct Violation {
    line: usize,
    item: String,
    field: String,
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A token of Rust source: enough of the lexical grammar to find attributes, items and fields.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// The value of a string literal (escapes resolved; raw strings verbatim).
    Str(String),
    /// Any other literal (numbers, chars), as written.
    Lit(String),
    Punct(char),
    Lifetime,
}

/// Splits `text` into tokens with their 1-based line, dropping comments (doc comments too).
fn tokenize(text: &str) -> Vec<(Tok, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let word = |i: usize| {
        let len = chars[i..]
            .iter()
            .take_while(|c| c.is_alphanumeric() || **c == '_')
            .count();
        (chars[i..i + len].iter().collect::<String>(), i + len)
    };
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < chars.len() {
        let c = chars[i];
        let start_line = line;
        if c == '/' && chars.get(i + 1) == Some(&'/') {
            i += chars[i..].iter().take_while(|&&c| c != '\n').count();
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            i = block_comment(&chars, i, &mut line);
        } else if let Some((value, end)) = raw_string(&chars, i) {
            line += value.matches('\n').count();
            out.push((Tok::Str(value), start_line));
            i = end;
        } else if c == '"' || (c == 'b' && chars.get(i + 1) == Some(&'"')) {
            let (value, end) = string_literal(&chars, i + usize::from(c == 'b'), &mut line);
            out.push((Tok::Str(value), start_line));
            i = end;
        } else if c == '\'' {
            let (tok, end) = char_or_lifetime(&chars, i);
            out.push((tok, start_line));
            i = end;
        } else if c.is_alphabetic() || c == '_' {
            let (name, end) = word(i);
            out.push((Tok::Ident(name), start_line));
            i = end;
        } else if c.is_ascii_digit() {
            let (digits, end) = word(i);
            out.push((Tok::Lit(digits), start_line));
            i = end;
        } else {
            if !c.is_whitespace() {
                out.push((Tok::Punct(c), start_line));
            }
            line += usize::from(c == '\n');
            i += 1;
        }
    }
    out
}

/// Skips the (nested) block comment opening at `i`; returns the index after it.
fn block_comment(chars: &[char], mut i: usize, line: &mut usize) -> usize {
    let mut depth = 0;
    while i < chars.len() {
        if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
            depth += 1;
            i += 2;
        } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                break;
            }
        } else {
            *line += usize::from(chars[i] == '\n');
            i += 1;
        }
    }
    i
}

/// The value of the string literal whose opening quote is at `i`, and the index after it.
fn string_literal(chars: &[char], mut i: usize, line: &mut usize) -> (String, usize) {
    i += 1;
    let mut value = String::new();
    while i < chars.len() && chars[i] != '"' {
        if chars[i] != '\\' {
            *line += usize::from(chars[i] == '\n');
            value.push(chars[i]);
            i += 1;
            continue;
        }
        i += 1;
        match chars.get(i) {
            Some('\n') => {
                // line continuation: the newline and the next line's indent vanish
                while i < chars.len() && chars[i].is_whitespace() {
                    *line += usize::from(chars[i] == '\n');
                    i += 1;
                }
                continue;
            }
            Some('u') if chars.get(i + 1) == Some(&'{') => {
                // \u{…}: one character, not a format placeholder
                while i < chars.len() && chars[i] != '}' {
                    i += 1;
                }
                value.push('?');
            }
            Some('n') => value.push('\n'),
            Some('t') => value.push('\t'),
            Some(&other) => value.push(other),
            None => {}
        }
        i += 1;
    }
    (value, i + 1)
}

/// The char literal (`'x'`, `'\n'`, `'\''`) or lifetime (`'a`) starting at `i`, and the index
/// after it.
fn char_or_lifetime(chars: &[char], i: usize) -> (Tok, usize) {
    let close = if chars.get(i + 1) == Some(&'\\') {
        (i + 3..chars.len().min(i + 12)).find(|&j| chars[j] == '\'')
    } else {
        (chars.get(i + 2) == Some(&'\'')).then_some(i + 2)
    };
    match close {
        Some(end) => (Tok::Lit(chars[i..=end].iter().collect()), end + 1),
        None => {
            let len = chars[i + 1..]
                .iter()
                .take_while(|c| c.is_alphanumeric() || **c == '_')
                .count();
            (Tok::Lifetime, i + 1 + len)
        }
    }
}

/// A raw string literal (`r"…"`, `r#"…"#`, `br#"…"#`) starting at `i`: its value and end.
fn raw_string(chars: &[char], i: usize) -> Option<(String, usize)> {
    let mut j = i;
    if chars.get(j) == Some(&'b') {
        j += 1;
    }
    if chars.get(j) != Some(&'r')
        || (i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_'))
    {
        return None;
    }
    j += 1;
    let hashes = chars[j..].iter().take_while(|&&c| c == '#').count();
    j += hashes;
    if chars.get(j) != Some(&'"') {
        return None;
    }
    j += 1;
    let begin = j;
    while j < chars.len() {
        if chars[j] == '"'
            && chars[j + 1..]
                .iter()
                .take(hashes)
                .filter(|&&c| c == '#')
                .count()
                == hashes
        {
            return Some((chars[begin..j].iter().collect(), j + 1 + hashes));
        }
        j += 1;
    }
    None
}

/// The index just past the group that opens at `open` (`(`, `[`, `{`), matching nested groups.
fn group_end(toks: &[(Tok, usize)], open: usize) -> usize {
    let mut depth = 0i64;
    for (k, (tok, _)) in toks.iter().enumerate().skip(open) {
        match tok {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => {
                depth -= 1;
                if depth == 0 {
                    return k + 1;
                }
            }
            _ => {}
        }
    }
    toks.len()
}

/// Splits `toks` at the commas outside any group or generic argument list.
fn split_commas(toks: &[(Tok, usize)]) -> Vec<&[(Tok, usize)]> {
    let mut parts = Vec::new();
    let (mut depth, mut angle, mut start) = (0i64, 0i64, 0);
    for (k, (tok, _)) in toks.iter().enumerate() {
        let prev = k.checked_sub(1).map(|p| &toks[p].0);
        match tok {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => depth -= 1,
            Tok::Punct('<') => angle += 1,
            Tok::Punct('>') if !matches!(prev, Some(Tok::Punct('-' | '='))) => {
                angle = (angle - 1).max(0)
            }
            Tok::Punct(',') if depth == 0 && angle == 0 => {
                parts.push(&toks[start..k]);
                start = k + 1;
            }
            _ => {}
        }
    }
    if start < toks.len() {
        parts.push(&toks[start..]);
    }
    parts
}

/// An attribute `#[…]`: its tokens between the brackets.
struct Attr<'a> {
    body: &'a [(Tok, usize)],
    line: usize,
}

impl Attr<'_> {
    /// The attribute's name (`error`, `from`, `derive`, …).
    fn name(&self) -> Option<&str> {
        match self.body.first() {
            Some((Tok::Ident(name), _)) => Some(name),
            _ => None,
        }
    }

    /// The tokens inside the attribute's parentheses, `#[name(…)]`.
    fn args(&self) -> &[(Tok, usize)] {
        match self.body.get(1) {
            Some((Tok::Punct('('), _)) => &self.body[2..self.body.len() - 1],
            _ => &[],
        }
    }
}

/// The attributes starting at `k` (outer ones, `#[…]`), and the index after them.
fn attributes(toks: &[(Tok, usize)], mut k: usize) -> (Vec<Attr<'_>>, usize) {
    let mut attrs = Vec::new();
    while toks.get(k).is_some_and(|t| t.0 == Tok::Punct('#'))
        && toks.get(k + 1).is_some_and(|t| t.0 == Tok::Punct('['))
    {
        let end = group_end(toks, k + 1);
        attrs.push(Attr {
            body: &toks[k + 2..end - 1],
            line: toks[k].1,
        });
        k = end;
    }
    (attrs, k)
}

/// One field: its name (`0`, `1`, … for tuple fields) and whether thiserror takes it as the
/// source (`#[from]`, `#[source]`, or named `source`).
struct Field {
    name: String,
    is_source: bool,
}

/// The fields of a `{ … }` (named) or `( … )` (tuple) list.
fn fields(list: &[(Tok, usize)], named: bool) -> Vec<Field> {
    split_commas(list)
        .into_iter()
        .enumerate()
        .filter(|(_, part)| !part.is_empty())
        .map(|(index, part)| {
            let (attrs, mut k) = attributes(part, 0);
            if part.get(k).is_some_and(|t| t.0 == Tok::Ident("pub".into())) {
                k += 1;
                if part.get(k).is_some_and(|t| t.0 == Tok::Punct('(')) {
                    k = group_end(part, k);
                }
            }
            let name = match (named, part.get(k)) {
                (true, Some((Tok::Ident(name), _))) => name.clone(),
                _ => index.to_string(),
            };
            let marked = attrs
                .iter()
                .any(|a| matches!(a.name(), Some("from" | "source")));
            Field {
                is_source: marked || name == "source",
                name,
            }
        })
        .collect()
}

/// The fields a `#[error("…", args…)]` message interpolates; `None` for `transparent` or a
/// message that is not a string literal.
fn interpolated(error: &Attr<'_>) -> Option<Vec<String>> {
    let args = split_commas(error.args());
    let Some((Tok::Str(format), _)) = args.first().and_then(|a| a.first()) else {
        return None;
    };
    // extra arguments: `name = expr` or positional `expr`
    let mut named: Vec<(String, &[(Tok, usize)])> = Vec::new();
    let mut positional: Vec<&[(Tok, usize)]> = Vec::new();
    for arg in &args[1..] {
        match arg {
            [(Tok::Ident(name), _), (Tok::Punct('='), _), rest @ ..]
                if !matches!(rest.first(), Some((Tok::Punct('='), _))) =>
            {
                named.push((name.clone(), rest));
            }
            _ => positional.push(arg),
        }
    }
    let mut used = Vec::new();
    let mut next_positional = 0;
    for placeholder in placeholders(format) {
        let argument = placeholder.split([':']).next().unwrap_or("").trim();
        if argument.is_empty() {
            if let Some(expr) = positional.get(next_positional) {
                used.extend(expression_fields(expr));
            }
            next_positional += 1;
        } else if let Some((_, expr)) = named.iter().find(|(name, _)| name == argument) {
            used.extend(expression_fields(expr));
        } else {
            // `{field}`, or `{0}` for a tuple field
            used.push(argument.to_string());
        }
    }
    Some(used)
}

/// The `{…}` placeholders of a format string (`{{` and `}}` are literal braces).
fn placeholders(format: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
            }
            '{' => {
                let inner: String = chars.by_ref().take_while(|&c| c != '}').collect();
                out.push(inner);
            }
            _ => {}
        }
    }
    out
}

/// The fields an argument expression names: bare identifiers not reached through `.` or `::`
/// (`path.display()` names `path`), and `.0`-style tuple fields.
fn expression_fields(expr: &[(Tok, usize)]) -> Vec<String> {
    let mut out = Vec::new();
    for (k, (tok, _)) in expr.iter().enumerate() {
        let prev = k.checked_sub(1).map(|p| &expr[p].0);
        let next = expr.get(k + 1).map(|t| &t.0);
        match tok {
            Tok::Ident(name)
                if !matches!(prev, Some(Tok::Punct('.' | ':')))
                    && !matches!(next, Some(Tok::Punct(':' | '('))) =>
            {
                out.push(name.clone());
            }
            Tok::Lit(n) if matches!(prev, Some(Tok::Punct('.'))) && k == 1 => out.push(n.clone()),
            _ => {}
        }
    }
    out
}

/// Whether a `#[derive(…)]` list names thiserror's `Error`.
fn derives_error(attr: &Attr<'_>) -> bool {
    attr.name() == Some("derive")
        && attr
            .args()
            .iter()
            .any(|(tok, _)| *tok == Tok::Ident("Error".into()))
}

/// Checks one variant (or struct): its `#[error]` attribute against its fields.
fn check_variant(attrs: &[Attr<'_>], fields: &[Field], item: String, found: &mut Vec<Violation>) {
    let Some(error) = attrs.iter().find(|a| a.name() == Some("error")) else {
        return;
    };
    for name in interpolated(error).unwrap_or_default() {
        let is_source = fields.iter().any(|f| f.is_source && f.name == name);
        if is_source
            && !found
                .iter()
                .any(|v| v.line == error.line && v.field == name)
        {
            found.push(Violation {
                line: error.line,
                item: item.clone(),
                field: name,
            });
        }
    }
}

/// What [`scan`] found in one file.
#[derive(Debug, Default)]
struct Scan {
    /// thiserror types (enums and structs) read.
    types: usize,
    /// Their messages that interpolate their own source.
    violations: Vec<Violation>,
}

/// Every thiserror type in `text`, and each message of one that interpolates its own source.
fn scan(text: &str) -> Scan {
    let toks = tokenize(text);
    let mut found = Scan::default();
    let mut k = 0;
    while k < toks.len() {
        let (attrs, after) = attributes(&toks, k);
        k = after.max(k + 1);
        if !attrs.iter().any(derives_error) {
            continue;
        }
        let Some(item) = item_at(&toks, after) else {
            continue;
        };
        found.types += 1;
        if item.is_struct {
            let fields = fields(item.body, item.named);
            check_variant(&attrs, &fields, item.name, &mut found.violations);
        } else {
            for variant in split_commas(item.body) {
                check_enum_variant(variant, &item.name, &mut found.violations);
            }
        }
        k = item.end;
    }
    found
}

/// An enum or struct: `[pub[(…)]] enum|struct Name [<…>] { … }`, or `( … );`, or `;`.
struct Item<'a> {
    is_struct: bool,
    name: String,
    /// The tokens between its braces or parentheses.
    body: &'a [(Tok, usize)],
    /// Whether the fields are named (braces).
    named: bool,
    /// The index after it.
    end: usize,
}

/// The item whose `enum` or `struct` keyword comes within a few tokens of `k`.
fn item_at(toks: &[(Tok, usize)], k: usize) -> Option<Item<'_>> {
    let keyword = (k..toks.len().min(k + 8))
        .find(|&j| matches!(&toks[j].0, Tok::Ident(w) if w == "enum" || w == "struct"))?;
    let Some((Tok::Ident(name), _)) = toks.get(keyword + 1) else {
        return None;
    };
    let open =
        (keyword + 2..toks.len()).find(|&j| matches!(toks[j].0, Tok::Punct('{' | '(' | ';')))?;
    let unit = toks[open].0 == Tok::Punct(';');
    let end = if unit {
        open + 1
    } else {
        group_end(toks, open)
    };
    Some(Item {
        is_struct: toks[keyword].0 == Tok::Ident("struct".into()),
        name: name.clone(),
        body: if unit { &[] } else { &toks[open + 1..end - 1] },
        named: toks[open].0 == Tok::Punct('{'),
        end,
    })
}

/// Checks one variant of enum `enum_name`: its attributes, name and fields.
fn check_enum_variant(variant: &[(Tok, usize)], enum_name: &str, found: &mut Vec<Violation>) {
    let (attrs, v) = attributes(variant, 0);
    let Some((Tok::Ident(name), _)) = variant.get(v) else {
        return;
    };
    let fields = match variant.get(v + 1) {
        Some((Tok::Punct(c @ ('{' | '(')), _)) => {
            let close = group_end(variant, v + 1);
            fields(&variant[v + 2..close - 1], *c == '{')
        }
        _ => Vec::new(),
    };
    check_variant(&attrs, &fields, format!("{enum_name}::{name}"), found);
}

#[test]
fn no_error_message_interpolates_its_own_source() {
    // ERROR_VARIANTS_SRC checks another tree (e.g. an older checkout, to see the test fail)
    let src = std::env::var_os("ERROR_VARIANTS_SRC").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        PathBuf::from,
    );
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut report = Vec::new();
    let mut error_types = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let scan = scan(&text);
        error_types += scan.types;
        for v in scan.violations {
            report.push(format!(
                "{}:{}: {}: the message interpolates `{}`, which is also its source, so `{{:#}}` \
                 prints that cause twice",
                file.display(),
                v.line,
                v.item,
                v.field
            ));
        }
    }
    eprintln!("{error_types} thiserror types read");
    assert!(
        error_types >= 10,
        "found only {error_types} thiserror types"
    );
    assert!(report.is_empty(), "{}", report.join("\n"));
}

#[test]
fn the_scanner_finds_planted_violations() {
    let planted = r#"
        use std::path::PathBuf;
        /// Doc comments with {0} and #[error("{0}")] are not code.
        #[derive(Debug, thiserror::Error)]
        pub enum Planted {
            /// A tuple source, interpolated.
            #[error("model forward pass failed: {0}")]
            Candle(#[from] candle_core::Error),
            /// Named `source`, interpolated with a format spec.
            #[error("{path}: cannot read: {source:?}")]
            Io { path: PathBuf, source: std::io::Error },
            /// `#[source]` under another name, through a named argument.
            #[error(
                "{}: cannot parse \
                 ({cause})",
                path.display(),
                cause = err.to_string()
            )]
            Parse {
                path: PathBuf,
                #[source]
                err: std::num::ParseIntError,
            },
            /// Through an implicit positional argument.
            #[error("{}: {}", path.display(), source)]
            Positional { path: PathBuf, source: std::io::Error },
            /// The fine ones: transparent, the source not in the message, `{0}` not a source,
            /// `{{0}}` a literal brace, `{1}` a plain field beside a source.
            #[error(transparent)]
            Transparent(#[from] std::fmt::Error),
            #[error("{path}: cannot read")]
            Quiet { path: PathBuf, #[source] source: std::io::Error },
            #[error("device `{0}`: {1} {{0}}")]
            Device(String, String),
            #[error("{1}")]
            Second(#[source] std::io::Error, String),
            #[error("{kind}")]
            NotDerivedSource { kind: &'static str, sources: Vec<String> },
        }

        #[derive(Debug, thiserror::Error)]
        #[error("value {value:?} ({source})")]
        pub struct Unit<T: Clone> {
            value: Vec<T>,
            #[from]
            source: std::io::Error,
        }

        #[derive(Debug)]
        pub enum NotAnError {
            #[doc = "{0}"]
            A(#[allow(unused)] u8),
        }
    "#;
    let scan = scan(planted);
    assert_eq!(scan.types, 2);
    let found: Vec<(usize, String, String)> = scan
        .violations
        .into_iter()
        .map(|v| (v.line, v.item, v.field))
        .collect();
    assert_eq!(
        found,
        [
            (7, "Planted::Candle".to_string(), "0".to_string()),
            (10, "Planted::Io".to_string(), "source".to_string()),
            (13, "Planted::Parse".to_string(), "err".to_string()),
            (25, "Planted::Positional".to_string(), "source".to_string()),
            (42, "Unit".to_string(), "source".to_string()),
        ]
    );
}

#[cfg(unix)] // the OS's wording of ENOENT
#[test]
fn a_missing_probe_file_names_its_cause_once() {
    let out_dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_clip-audit"))
        .current_dir(out_dir.path())
        // a path with a folder: a bare `missing.toml` would be looked up among the built-ins
        .args(["run", "--probe", "./missing.toml", "--dataset"])
        .arg(root.join("datasets/demo.toml"))
        .arg("--model")
        .arg(root.join("tests/fixtures/tiny-clip"))
        .arg("--out")
        .arg(out_dir.path().join("report"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("missing.toml"), "{stderr}");
}
