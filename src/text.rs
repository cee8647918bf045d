//! Rules for text people show each other (message bodies, display names, room names): text that
//! renders as nothing is empty, names may not carry controls that reorder the text around them,
//! and one-line text holds no line break of any kind.

/// True if `s` would show nothing: it holds only whitespace, control characters and characters
/// that render invisibly.
///
/// "Invisible" is Unicode's Default_Ignorable_Code_Point set (zero-width space and joiners,
/// word joiner, BOM, soft hyphen, combining grapheme joiner, variation selectors, bidi marks,
/// overrides and isolates, tag characters, the Hangul fillers, …), plus U+2800 BRAILLE
/// PATTERN BLANK, which every font draws as an empty cell and which is the other classic way to
/// post "nothing". Combining marks are not blank: alone they render on a dotted circle.
/// Such characters inside visible text are fine ("👩\u{200D}💻" is one emoji); only text made
/// of nothing else is blank.
pub fn is_blank(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_whitespace() || c.is_control() || is_invisible(c))
}

/// True if `s` holds a bidirectional embedding, override or isolate control (U+202A–U+202E,
/// U+2066–U+2069): in a name they can make the text after it read backwards ("Bob\u{202E}nimdA"
/// shows as "BobAdmin"). The implicit marks (U+200E, U+200F, U+061C) only nudge neutral
/// characters and are allowed.
pub fn has_bidi_controls(s: &str) -> bool {
    s.chars()
        .any(|c| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
}

/// True if `s` fits on one line: no control character (among them LF, CR, VT, FF and NEL) and
/// no U+2028 LINE SEPARATOR or U+2029 PARAGRAPH SEPARATOR, which are not controls but break the
/// line all the same wherever the text is shown.
pub fn is_one_line(s: &str) -> bool {
    !s.chars()
        .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
}

/// `s` for matching what people type: lower case, accents dropped ("Café" → "cafe"), by
/// canonical decomposition without the combining marks.
pub fn fold(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    use unicode_normalization::char::is_combining_mark;
    s.nfd()
        .filter(|&c| !is_combining_mark(c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Default_Ignorable_Code_Point (Unicode 15, DerivedCoreProperties.txt), and U+2800.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{2800}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_of_invisible_characters_is_blank() {
        for blank in [
            "",
            " \t\n",
            "\u{200B}",
            "\u{200B}\u{200C}\u{200D}\u{FEFF}",
            "\u{2060}\u{00AD}\u{034F}",
            "\u{FE0F}\u{E0100}",
            "\u{3164}\u{115F}",
            "\u{2800}\u{2800}",
            "\u{202E}\u{2066}\u{2069}\u{200E}",
            "\u{0007}\u{00A0}\u{3000}",
            "\u{E0041}\u{E007F}",
        ] {
            assert!(is_blank(blank), "{blank:?}");
        }
        for visible in ["a", " a ", "👩\u{200D}💻", "\u{200B}.", "\u{0301}", "ㅤx"] {
            assert!(!is_blank(visible), "{visible:?}");
        }
    }

    #[test]
    fn one_line_text_has_no_line_break_and_no_control() {
        for broken in [
            "a\nb",
            "a\rb",
            "a\u{0B}b",
            "a\u{0C}b",
            "a\u{85}b",
            "a\u{2028}b",
            "a\u{2029}b",
            "a\tb",
        ] {
            assert!(!is_one_line(broken), "{broken:?}");
        }
        for one in ["", "a b", "a\u{00A0}b", "a\u{200B}b", "Café ☕"] {
            assert!(is_one_line(one), "{one:?}");
        }
    }

    #[test]
    fn overrides_and_isolates_are_bidi_controls() {
        for c in ('\u{202A}'..='\u{202E}').chain('\u{2066}'..='\u{2069}') {
            assert!(has_bidi_controls(&format!("Bob{c}x")), "{c:?}");
        }
        for fine in [
            "Bob",
            "בוב",
            "Bob\u{200E}",
            "\u{200F}x",
            "\u{061C}x",
            "\u{2065}",
        ] {
            assert!(!has_bidi_controls(fine), "{fine:?}");
        }
    }
}
