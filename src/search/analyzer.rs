//! How message text becomes index terms, shared by indexing, queries and highlights so the
//! three always agree.
//!
//! Words are runs of letters and digits (combining marks stay inside their word), lower-cased
//! and folded to ASCII ("Café" → "cafe"); queries match them by prefix. Chinese and Japanese
//! are written without spaces, so a run of CJK characters is indexed as its single characters
//! and its overlapping pairs ("会议取消" → 会, 会议, 议, 议取, 取, 取消, 消): a query pair
//! matches wherever those two characters stand together, with no dictionary to ship.

use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, TextAnalyzer, Token, TokenStream, Tokenizer,
};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// The name the analyzer is registered under in the index.
pub const NAME: &str = "confab";

/// Longer tokens (a pasted hash, a URL's tail) are not worth a term.
const MAX_TOKEN_BYTES: usize = 64;

pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(Splitter)
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// Han (with the compatibility and extension blocks), hiragana, katakana and the ideographic
/// iteration marks. Hangul is left out: Korean separates words with spaces.
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3005..=0x3007
        | 0x3040..=0x30FF
        | 0x31F0..=0x31FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xF900..=0xFAFF
        | 0xFF66..=0xFF9F
        | 0x20000..=0x2FA1F)
}

fn is_word_char(c: char) -> bool {
    (c.is_alphanumeric() || is_combining_mark(c)) && !is_cjk(c)
}

/// What a term is, which decides how a query matches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Matched by prefix.
    Word,
    /// One CJK character: matched exactly, and only asked for when a query has a lone one.
    Single,
    /// Two CJK characters: matched exactly.
    Pair,
}

/// A normalized term and where it stands in the original text (byte offsets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub text: String,
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

/// The terms of `text`, in order.
pub fn terms(analyzer: &mut TextAnalyzer, text: &str) -> Vec<Term> {
    let mut out = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while let Some(token) = stream.next() {
        let original = &text[token.offset_from..token.offset_to];
        let kind = match original.chars().next() {
            Some(c) if is_cjk(c) => {
                if original.chars().count() == 2 {
                    Kind::Pair
                } else {
                    Kind::Single
                }
            }
            _ => Kind::Word,
        };
        out.push(Term {
            text: token.text.clone(),
            start: token.offset_from,
            end: token.offset_to,
            kind,
        });
    }
    out
}

/// The terms a query word must match: its words (as prefixes) and its CJK pairs, or the
/// character itself when a CJK run is one character long.
pub fn query_terms(analyzer: &mut TextAnalyzer, text: &str) -> Vec<Term> {
    let all = terms(analyzer, text);
    let in_a_pair = |t: &Term| {
        all.iter()
            .any(|p| p.kind == Kind::Pair && (p.start == t.start || p.end == t.end))
    };
    all.iter()
        .filter(|t| t.kind != Kind::Single || !in_a_pair(t))
        .cloned()
        .collect()
}

/// Splits text into words and CJK singles and pairs; the filters after it normalize them.
#[derive(Clone, Default)]
pub struct Splitter;

impl Tokenizer for Splitter {
    type TokenStream<'a> = Tokens;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Tokens {
        Tokens {
            tokens: split(text),
            next: 0,
        }
    }
}

fn split(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut position = 0;
    let mut chars = text.char_indices().peekable();
    let token = |start: usize, end: usize, position: usize, length: usize| {
        let original = &text[start..end];
        // One spelling per word: "café" typed precomposed or with a combining accent.
        let text = if original.is_ascii() {
            original.to_owned()
        } else {
            original.nfc().collect()
        };
        Token {
            offset_from: start,
            offset_to: end,
            position,
            text,
            position_length: length,
        }
    };
    while let Some((start, c)) = chars.next() {
        if is_cjk(c) {
            let mut run = vec![(start, c)];
            while let Some(&(i, d)) = chars.peek() {
                if !is_cjk(d) {
                    break;
                }
                run.push((i, d));
                chars.next();
            }
            for (k, &(from, ch)) in run.iter().enumerate() {
                tokens.push(token(from, from + ch.len_utf8(), position + k, 1));
                if let Some(&(next, ch2)) = run.get(k + 1) {
                    tokens.push(token(from, next + ch2.len_utf8(), position + k, 2));
                }
            }
            position += run.len();
        } else if is_word_char(c) {
            let mut end = start + c.len_utf8();
            while let Some(&(i, d)) = chars.peek() {
                if !is_word_char(d) {
                    break;
                }
                end = i + d.len_utf8();
                chars.next();
            }
            tokens.push(token(start, end, position, 1));
            position += 1;
        }
    }
    tokens
}

pub struct Tokens {
    tokens: Vec<Token>,
    /// One past the current token.
    next: usize,
}

impl TokenStream for Tokens {
    fn advance(&mut self) -> bool {
        if self.next < self.tokens.len() {
            self.next += 1;
            true
        } else {
            false
        }
    }

    fn token(&self) -> &Token {
        &self.tokens[self.next.saturating_sub(1)]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next.saturating_sub(1)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str) -> Vec<String> {
        terms(&mut analyzer(), text)
            .into_iter()
            .map(|t| t.text)
            .collect()
    }

    #[test]
    fn words_are_lower_cased_and_folded() {
        assert_eq!(
            texts("Café, Straße! Rechnungsadresse"),
            ["cafe", "strasse", "rechnungsadresse"]
        );
        // A combining accent stays in its word and folds the same way.
        assert_eq!(texts("cafe\u{301} ok"), ["cafe", "ok"]);
    }

    #[test]
    fn cjk_runs_become_singles_and_pairs_with_offsets() {
        let found = terms(&mut analyzer(), "明天的会议");
        let got: Vec<(&str, usize, usize)> = found
            .iter()
            .map(|t| (t.text.as_str(), t.start, t.end))
            .collect();
        assert_eq!(
            got,
            [
                ("明", 0, 3),
                ("明天", 0, 6),
                ("天", 3, 6),
                ("天的", 3, 9),
                ("的", 6, 9),
                ("的会", 6, 12),
                ("会", 9, 12),
                ("会议", 9, 15),
                ("议", 12, 15),
            ]
        );
    }

    #[test]
    fn mixed_text_keeps_words_apart_from_cjk() {
        assert_eq!(
            texts("Meeting会议ok"),
            ["meeting", "会", "会议", "议", "ok"]
        );
        assert_eq!(
            texts("ミーティングは3時"),
            [
                "ミ", "ミー", "ー", "ーテ", "テ", "ティ", "ィ", "ィン", "ン", "ング", "グ", "グは",
                "は", "3", "時"
            ]
        );
    }

    #[test]
    fn a_query_asks_for_pairs_or_a_lone_character() {
        let query = |text: &str| -> Vec<(String, Kind)> {
            query_terms(&mut analyzer(), text)
                .into_iter()
                .map(|t| (t.text, t.kind))
                .collect()
        };
        assert_eq!(query("会议"), [("会议".to_owned(), Kind::Pair)]);
        assert_eq!(
            query("会议取"),
            [
                ("会议".to_owned(), Kind::Pair),
                ("议取".to_owned(), Kind::Pair)
            ]
        );
        assert_eq!(query("会"), [("会".to_owned(), Kind::Single)]);
        assert_eq!(query("Inv"), [("inv".to_owned(), Kind::Word)]);
    }
}
