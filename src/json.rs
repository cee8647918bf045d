//! JSON input rules shared by HTTP bodies and WebSocket frames: an object that gives a key
//! twice is refused, at any depth, rather than letting the last one win (`{"to":3,"to":4}`
//! must not quietly mean 4 to one reader and 3 to another); and an optional field given as
//! `null` is a wrong type, not an absent field ([`present`]).

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};

/// Parses `bytes` as `T`, refusing duplicate keys anywhere in the document.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    check_unique_keys(bytes)?;
    serde_json::from_slice(bytes)
}

/// For an optional field, `#[serde(default, deserialize_with = "crate::json::present")]`:
/// absent is `None`, `null` is refused like any other wrong type. Plain `Option` would read
/// `{"name":null}` as "leave the name alone" and answer success for a change it did not make.
pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Checks that `bytes` is one JSON document in which no object repeats a key. The document is
/// walked, not built: keys are borrowed from the input unless they contain escapes, and values
/// are dropped as soon as they are read. serde_json's recursion limit bounds the depth.
pub fn check_unique_keys(bytes: &[u8]) -> serde_json::Result<()> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Unique::deserialize(&mut de)?;
    de.end()
}

/// A JSON string, borrowed from the input when it has no escapes (`Cow<str>`'s own
/// `Deserialize` always copies).
pub struct Str<'a>(pub Cow<'a, str>);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = Str<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(s)))
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(s.to_owned())))
            }
        }
        deserializer.deserialize_str(StrVisitor)
    }
}

/// Any JSON value whose objects, however deep, repeat no key.
struct Unique;

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueVisitor)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Unique;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Unique, A::Error> {
        while seq.next_element::<Unique>()?.is_some() {}
        Ok(Unique)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Unique, A::Error> {
        let mut seen = HashSet::new();
        while let Some(Str(key)) = map.next_key()? {
            if seen.contains(&key) {
                return Err(de::Error::custom(format_args!("duplicate key `{key}`")));
            }
            map.next_value::<Unique>()?;
            seen.insert(key);
        }
        Ok(Unique)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unique(text: &str) -> bool {
        check_unique_keys(text.as_bytes()).is_ok()
    }

    #[test]
    fn duplicate_keys_are_found_at_any_depth() {
        for ok in [
            r#"{"to":3,"body":"hi"}"#,
            r#"[{"a":1},{"a":2}]"#,
            r#"{"a":{"a":{"a":1}}}"#,
            r#"{"a":1,"A":2}"#,
            r#""just a string""#,
            "null",
            "[]",
            "{}",
        ] {
            assert!(unique(ok), "{ok}");
        }
        for duplicated in [
            r#"{"to":3,"to":4}"#,
            r#"{"x":{"k":1,"k":2}}"#,
            r#"[1,{"k":[{"a":1,"a":1}]}]"#,
            // The same key, once escaped: still the same key.
            r#"{"to":3,"\u0074o":4}"#,
        ] {
            let error = check_unique_keys(duplicated.as_bytes()).err();
            assert!(
                error.is_some_and(|e| e.to_string().starts_with("duplicate key")),
                "{duplicated}"
            );
        }
    }

    #[test]
    fn the_document_must_be_json_and_nothing_else() {
        for bad in ["", "{", r#"{"a":1} {"a":1}"#, "{'a':1}", r#"{"a":1,}"#] {
            assert!(!unique(bad), "{bad:?}");
        }
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(
            !unique(&deep),
            "serde_json's recursion limit bounds the depth"
        );
    }

    #[test]
    fn from_slice_parses_only_unique_documents() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct Body {
            name: String,
        }
        assert_eq!(
            from_slice::<Body>(br#"{"name":"bob"}"#).ok(),
            Some(Body { name: "bob".into() })
        );
        assert!(from_slice::<Body>(br#"{"name":"bob","name":"eve"}"#).is_err());
    }
}
