//! The one place that turns records into bytes for redb: postcard behind a versioned envelope.
//!
//! Every stored value is `[format version byte] ++ postcard(record)`. The redb type name of each
//! record is written by hand ([`Record::TYPE_NAME`]), because redb stores it in the file: renaming
//! a Rust type must never break an existing database. When a record's layout changes, bump its
//! `VERSION` and teach [`decode`] to read the old one.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A value stored in redb through this codec.
pub trait Record: Serialize + DeserializeOwned {
    /// Stable on-disk name of the record type. Never change it.
    const TYPE_NAME: &'static str;
    /// Format version written in front of every encoded record.
    const VERSION: u8;

    /// Reads a record written with an older format `version`, or `None` if this build cannot.
    /// Records are upgraded as they are read; the next write stores the current format.
    fn decode_older(version: u8, body: &[u8]) -> Option<Result<Self, postcard::Error>> {
        let _ = (version, body);
        None
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("{type_name} record has format version {found}, this build reads {expected}")]
    UnknownVersion {
        type_name: &'static str,
        found: u8,
        expected: u8,
    },
    #[error("{type_name} record is empty")]
    Empty { type_name: &'static str },
    #[error("{type_name} record cannot be decoded: {source}")]
    Postcard {
        type_name: &'static str,
        source: postcard::Error,
    },
}

/// redb value type for a record `T`; use it in `TableDefinition`s.
pub struct Stored<T>(PhantomData<T>);

impl<T> fmt::Debug for Stored<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Stored")
    }
}

/// The encoded bytes of a `T`, as read from or about to be written to redb.
/// Decoding is explicit and fallible, so a corrupt record is an error, never a panic.
pub struct Encoded<'a, T> {
    bytes: Cow<'a, [u8]>,
    _record: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Encoded<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Encoded({} bytes)", self.bytes.len())
    }
}

impl<T: Record> Encoded<'static, T> {
    pub fn new(record: &T) -> Encoded<'static, T> {
        let mut bytes = vec![T::VERSION];
        // Serializing plain structs into a Vec cannot fail; postcard only errors on
        // unsupported serde features (e.g. unknown-length sequences), which records don't use.
        bytes = postcard::to_extend(record, bytes).unwrap_or_else(|_| vec![T::VERSION]);
        Encoded {
            bytes: Cow::Owned(bytes),
            _record: PhantomData,
        }
    }
}

impl<T: Record> Encoded<'_, T> {
    pub fn decode(&self) -> Result<T, CodecError> {
        decode(&self.bytes)
    }
}

fn decode<T: Record>(bytes: &[u8]) -> Result<T, CodecError> {
    let type_name = T::TYPE_NAME;
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty { type_name })?;
    let decoded = if version == T::VERSION {
        postcard::from_bytes(body)
    } else {
        T::decode_older(version, body).ok_or(CodecError::UnknownVersion {
            type_name,
            found: version,
            expected: T::VERSION,
        })?
    };
    decoded.map_err(|source| CodecError::Postcard { type_name, source })
}

impl<T: Record> redb::Value for Stored<T> {
    type SelfType<'a>
        = Encoded<'a, T>
    where
        Self: 'a;
    type AsBytes<'a>
        = &'a [u8]
    where
        Self: 'a;

    fn fixed_width() -> Option<usize> {
        None
    }

    fn from_bytes<'a>(data: &'a [u8]) -> Encoded<'a, T>
    where
        Self: 'a,
    {
        Encoded {
            bytes: Cow::Borrowed(data),
            _record: PhantomData,
        }
    }

    fn as_bytes<'a, 'b: 'a>(value: &'a Encoded<'b, T>) -> &'a [u8]
    where
        Self: 'b,
    {
        &value.bytes
    }

    fn type_name() -> redb::TypeName {
        redb::TypeName::new(T::TYPE_NAME)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        name: String,
        n: u64,
    }
    impl Record for Sample {
        const TYPE_NAME: &'static str = "confab::Sample";
        const VERSION: u8 = 3;
    }

    #[test]
    fn round_trips_with_version_prefix() {
        let sample = Sample {
            name: "alice".into(),
            n: 42,
        };
        let encoded = Encoded::new(&sample);
        assert_eq!(encoded.bytes[0], 3);
        assert_eq!(encoded.decode().ok(), Some(sample));
    }

    #[test]
    fn refuses_unknown_versions_and_garbage() {
        assert!(matches!(
            decode::<Sample>(&[9, 1, 2]),
            Err(CodecError::UnknownVersion { found: 9, .. })
        ));
        assert!(matches!(
            decode::<Sample>(&[]),
            Err(CodecError::Empty { .. })
        ));
        assert!(matches!(
            decode::<Sample>(&[3, 200]),
            Err(CodecError::Postcard { .. })
        ));
    }
}
