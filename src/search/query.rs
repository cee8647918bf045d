//! The search box's language: words (all must match, each as a prefix), "quoted phrases",
//! and filters `from:alice`, `in:general`, `in:"room name"`, `in:@bob`, `has:file`,
//! `before:2026-11-01`, `after:2026-11-01`. Names are resolved against the store later; this
//! only reads the text.

/// Longest query, in characters: a search box, not a document.
pub const MAX_QUERY_CHARS: usize = 500;
/// Most words and phrases in one query.
pub const MAX_PARTS: usize = 20;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Query {
    pub words: Vec<String>,
    pub phrases: Vec<String>,
    /// A username (without `@`).
    pub from: Option<String>,
    pub within: Option<Within>,
    pub has_file: bool,
    /// Sent before this time (unix ms, exclusive): the start of the `before:` day, UTC.
    pub before: Option<u64>,
    /// Sent at or after this time (unix ms): the end of the `after:` day, UTC.
    pub after: Option<u64>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Within {
    /// A room, by name (case-insensitive).
    Room(String),
    /// The DM with this username.
    Dm(String),
}

/// Why a query cannot be run; the text is shown to the person searching.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn invalid(message: impl Into<String>) -> Invalid {
    Invalid(message.into())
}

const DAY_MS: u64 = 24 * 3600 * 1000;

pub fn parse(text: &str) -> Result<Query, Invalid> {
    if text.chars().count() > MAX_QUERY_CHARS {
        return Err(invalid(format!(
            "a search is at most {MAX_QUERY_CHARS} characters"
        )));
    }
    let mut query = Query::default();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let (part, after) = next_part(rest);
        rest = after.trim_start();
        match part {
            Part::Phrase(phrase) => {
                if !phrase.trim().is_empty() {
                    query.phrases.push(phrase);
                }
            }
            Part::Word(word) => query.words.push(word),
            Part::Filter(key, value) => query.filter(&key, value)?,
        }
    }
    if query.words.len() + query.phrases.len() > MAX_PARTS {
        return Err(invalid(format!(
            "a search has at most {MAX_PARTS} words and phrases"
        )));
    }
    let filtered = query.from.is_some()
        || query.within.is_some()
        || query.has_file
        || query.before.is_some()
        || query.after.is_some();
    if query.words.is_empty() && query.phrases.is_empty() && !filtered {
        return Err(invalid("type something to search for"));
    }
    Ok(query)
}

enum Part {
    Word(String),
    Phrase(String),
    Filter(String, String),
}

const FILTERS: [&str; 5] = ["from", "in", "has", "before", "after"];

/// The next word, phrase or filter of `text` (which starts with neither space nor end), and
/// what follows it.
fn next_part(text: &str) -> (Part, &str) {
    if let Some(inner) = text.strip_prefix('"') {
        let (phrase, rest) = quoted(inner);
        return (Part::Phrase(phrase.to_owned()), rest);
    }
    if let Some((key, value)) = text.split_once(':') {
        let key_lower = key.to_lowercase();
        if FILTERS.contains(&key_lower.as_str()) {
            if let Some(inner) = value.strip_prefix('"') {
                let (value, rest) = quoted(inner);
                return (Part::Filter(key_lower, value.to_owned()), rest);
            }
            // `in:@"…"` is the only other place a quote may open.
            if let Some(inner) = value.strip_prefix("@\"") {
                let (value, rest) = quoted(inner);
                return (Part::Filter(key_lower, format!("@{value}")), rest);
            }
            let (value, rest) = up_to_space(value);
            return (Part::Filter(key_lower, value.to_owned()), rest);
        }
    }
    let (word, rest) = up_to_space(text);
    (Part::Word(word.to_owned()), rest)
}

/// Up to the closing quote (or the end, if it never closes).
fn quoted(text: &str) -> (&str, &str) {
    match text.split_once('"') {
        Some((inside, rest)) => (inside, rest),
        None => (text, ""),
    }
}

fn up_to_space(text: &str) -> (&str, &str) {
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    (&text[..end], &text[end..])
}

impl Query {
    fn filter(&mut self, key: &str, value: String) -> Result<(), Invalid> {
        let value = value.trim().to_owned();
        if value.is_empty() {
            return Err(invalid(format!(
                "{key}: needs a value, like {}",
                example(key)
            )));
        }
        match key {
            "from" => {
                let name = value.strip_prefix('@').unwrap_or(&value);
                set_once(&mut self.from, name.to_owned(), key)?;
            }
            "in" => {
                let within = match value.strip_prefix('@') {
                    Some(user) if !user.is_empty() => Within::Dm(user.to_owned()),
                    Some(_) => return Err(invalid("in:@ needs a username, like in:@bob")),
                    None => Within::Room(value.strip_prefix('#').unwrap_or(&value).to_owned()),
                };
                set_once(&mut self.within, within, key)?;
            }
            "has" => {
                if !value.eq_ignore_ascii_case("file") {
                    return Err(invalid(format!(
                        "has:{value} is not a filter; only has:file is"
                    )));
                }
                // A flag rather than a value, but given twice it is as much a slip as any
                // other filter given twice.
                if self.has_file {
                    return Err(given_twice(key));
                }
                self.has_file = true;
            }
            "before" => {
                let day = parse_day(&value, key)?;
                set_once(&mut self.before, day, key)?;
            }
            "after" => {
                let day = parse_day(&value, key)?;
                set_once(&mut self.after, day + DAY_MS, key)?;
            }
            _ => unreachable!("only FILTERS reach here"),
        }
        Ok(())
    }
}

fn example(key: &str) -> &'static str {
    match key {
        "from" => "from:alice",
        "in" => "in:general or in:@bob",
        "has" => "has:file",
        "before" => "before:2026-11-01",
        _ => "after:2026-11-01",
    }
}

fn set_once<T>(slot: &mut Option<T>, value: T, key: &str) -> Result<(), Invalid> {
    if slot.is_some() {
        return Err(given_twice(key));
    }
    *slot = Some(value);
    Ok(())
}

fn given_twice(key: &str) -> Invalid {
    invalid(format!("use {key}: only once in a search"))
}

/// `YYYY-MM-DD` → unix ms at the start of that day, UTC.
fn parse_day(value: &str, key: &str) -> Result<u64, Invalid> {
    let bad = || {
        invalid(format!(
            "{key}:{value} is not a date; write it like {key}:2026-11-01"
        ))
    };
    let mut parts = value.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(y) && digits(m) && digits(d)) {
        return Err(bad());
    }
    let (y, m, d): (u64, u64, u64) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    if y < 1970 || !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return Err(bad());
    }
    Ok(days_since_epoch(y, m, d) * DAY_MS)
}

fn days_in_month(y: u64, m: u64) -> u64 {
    let leap = (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 (H. Hinnant's `days_from_civil`, for years from 1970).
fn days_since_epoch(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn words_phrases_and_filters() {
        let q =
            parse(r#"inv "next week" from:@Alice in:general after:2026-11-01"#).expect("parses");
        assert_eq!(q.words, words(&["inv"]));
        assert_eq!(q.phrases, words(&["next week"]));
        assert_eq!(q.from.as_deref(), Some("Alice"));
        assert_eq!(q.within, Some(Within::Room("general".into())));
        // After the whole day of 2026-11-01.
        assert_eq!(q.after, Some(1_793_491_200_000 + DAY_MS));
        assert_eq!(q.before, None);
    }

    #[test]
    fn quoted_room_names_and_dms() {
        let q = parse(r#"in:"Secret plans" budget"#).expect("parses");
        assert_eq!(q.within, Some(Within::Room("Secret plans".into())));
        assert_eq!(q.words, words(&["budget"]));
        let q = parse("IN:@bob").expect("parses");
        assert_eq!(q.within, Some(Within::Dm("bob".into())));
        let q = parse("in:#general x").expect("parses");
        assert_eq!(q.within, Some(Within::Room("general".into())));
    }

    #[test]
    fn dates_are_utc_days() {
        assert_eq!(
            parse("before:1970-01-02").expect("parses").before,
            Some(DAY_MS)
        );
        assert_eq!(
            parse("before:2024-03-01").expect("parses").before,
            Some(1_709_251_200_000)
        );
        assert_eq!(
            parse("before:2024-02-29").expect("parses").before,
            Some(1_709_164_800_000)
        );
    }

    #[test]
    fn a_colon_in_an_ordinary_word_is_just_text() {
        let q = parse("meet at 10:30 re:invoice").expect("parses");
        assert_eq!(q.words, words(&["meet", "at", "10:30", "re:invoice"]));
    }

    #[test]
    fn an_unclosed_quote_runs_to_the_end() {
        let q = parse(r#"a "b c"#).expect("parses");
        assert_eq!(q.words, words(&["a"]));
        assert_eq!(q.phrases, words(&["b c"]));
    }

    #[test]
    fn bad_filters_and_dates_say_what_is_wrong() {
        let message = |q: &str| parse(q).expect_err("refused").0;
        assert!(message("before:2026-13-01").contains("not a date"));
        assert!(message("after:2026-02-30").contains("not a date"));
        assert!(message("after:yesterday").contains("after:2026-11-01"));
        assert!(message("has:image").contains("only has:file"));
        assert!(message("from:").contains("needs a value"));
        assert!(message("from:a from:b").contains("only once"));
        assert!(message("has:file x has:FILE").contains("only once"));
        assert!(message("in:@").contains("needs a username"));
        assert!(message("   ").contains("type something"));
        assert!(message(&"x ".repeat(21)).contains("at most 20"));
        assert!(message(&"x".repeat(501)).contains("at most 500"));
    }

    #[test]
    fn filters_alone_are_a_search() {
        let q = parse("from:alice").expect("parses");
        assert!(q.words.is_empty());
        assert_eq!(q.from.as_deref(), Some("alice"));
        assert!(parse("has:file").expect("parses").has_file);
    }
}
