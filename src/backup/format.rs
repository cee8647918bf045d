//! The one-file backup format: a header, named sections, and a SHA-256 of everything before
//! it, written and read in one streaming pass.
//!
//! ```text
//! "CONFABBK"            8 bytes, magic
//! format version        u32 LE (FORMAT_VERSION)
//! section*              kind u8, name length u16 LE, name (UTF-8), data length u64 LE, data
//!   kind 1 manifest     name "manifest.json": what made it and when (Manifest)
//!   kind 2 database     name "confab.redb": a redb database copied from one read transaction
//!   kind 3 file         name "ab/abcd…" (the attachment's SHA-256 in hex): its bytes
//! end                   kind 0, name length 0, data length 0
//! sha256                32 bytes, of every byte before it
//! ```

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const MAGIC: &[u8; 8] = b"CONFABBK";
/// Bumped when the layout above changes; a reader refuses versions it does not know.
pub const FORMAT_VERSION: u32 = 1;
/// Longest section name: an attachment's "ab/" plus 64 hex digits fits easily.
const MAX_NAME: usize = 256;
/// The manifest is a few hundred bytes; anything much larger is not one.
const MAX_MANIFEST: u64 = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Manifest = 1,
    Database = 2,
    File = 3,
}

impl Kind {
    fn from_byte(byte: u8) -> Option<Kind> {
        match byte {
            1 => Some(Kind::Manifest),
            2 => Some(Kind::Database),
            3 => Some(Kind::File),
            _ => None,
        }
    }
}

/// What a backup says about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Unix milliseconds when its database snapshot was taken.
    pub created_at: u64,
    /// The confab that wrote the backup.
    pub confab: String,
    /// The database format of its snapshot (store::SCHEMA of the writer).
    pub schema: u64,
}

impl Manifest {
    pub const NAME: &str = "manifest.json";

    pub fn parse(bytes: &[u8]) -> Result<Manifest, FormatError> {
        serde_json::from_slice(bytes).map_err(|e| FormatError::Bad(format!("manifest: {e}")))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("it is not a confab backup (it does not start with the backup header)")]
    NotABackup,
    #[error("it is in backup format {0}, which this confab does not know; use a newer confab")]
    UnknownVersion(u32),
    #[error("it ends early; it was probably cut off while copying")]
    Truncated,
    #[error("its checksum does not match: the file was changed or damaged after it was written")]
    Checksum,
    #[error("it is damaged: {0}")]
    Bad(String),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Counts and hashes every byte passing through.
struct Hashing<T> {
    inner: T,
    hash: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

pub struct BackupWriter<W: Write> {
    out: Hashing<W>,
}

impl<W: Write> BackupWriter<W> {
    pub fn new(out: W) -> io::Result<BackupWriter<W>> {
        let mut out = Hashing {
            inner: out,
            hash: Sha256::new(),
        };
        out.write_all(MAGIC)?;
        out.write_all(&FORMAT_VERSION.to_le_bytes())?;
        Ok(BackupWriter { out })
    }

    /// Appends a section of exactly `len` bytes read from `data`.
    pub fn section(
        &mut self,
        kind: Kind,
        name: &str,
        len: u64,
        data: &mut impl Read,
    ) -> io::Result<()> {
        if name.len() > MAX_NAME {
            return Err(io::Error::other(format!("section name too long: {name}")));
        }
        self.header(kind as u8, name, len)?;
        let copied = io::copy(&mut data.take(len), &mut self.out)?;
        if copied != len {
            return Err(io::Error::other(format!(
                "{name} shrank while it was copied ({copied} of {len} bytes)"
            )));
        }
        Ok(())
    }

    fn header(&mut self, kind: u8, name: &str, len: u64) -> io::Result<()> {
        self.out.write_all(&[kind])?;
        self.out.write_all(&(name.len() as u16).to_le_bytes())?;
        self.out.write_all(name.as_bytes())?;
        self.out.write_all(&len.to_le_bytes())
    }

    /// Pushes what is buffered so far (the header, at first) to the output.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Writes the end marker and the checksum; returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.header(0, "", 0)?;
        let digest = self.out.hash.finalize();
        let mut out = self.out.inner;
        out.write_all(&digest)?;
        Ok(out)
    }
}

/// A section's header; its data follows in the reader.
#[derive(Debug)]
pub struct Section {
    pub kind: Kind,
    pub name: String,
    pub len: u64,
}

pub struct BackupReader<R: Read> {
    input: Hashing<R>,
}

impl<R: Read> BackupReader<R> {
    pub fn new(input: R) -> Result<BackupReader<R>, FormatError> {
        let mut input = Hashing {
            inner: input,
            hash: Sha256::new(),
        };
        let mut magic = [0u8; 8];
        read_exact(&mut input, &mut magic).map_err(|e| match e {
            FormatError::Truncated => FormatError::NotABackup,
            other => other,
        })?;
        if &magic != MAGIC {
            return Err(FormatError::NotABackup);
        }
        let version = u32::from_le_bytes(read_array(&mut input)?);
        if version != FORMAT_VERSION {
            return Err(FormatError::UnknownVersion(version));
        }
        Ok(BackupReader { input })
    }

    /// The next section's header, or `None` at the end marker. The caller must read exactly
    /// `len` bytes from [`Self::data`] before asking for the next one.
    pub fn next_section(&mut self) -> Result<Option<Section>, FormatError> {
        let [kind] = read_array(&mut self.input)?;
        let name_len = u16::from_le_bytes(read_array(&mut self.input)?) as usize;
        if name_len > MAX_NAME {
            return Err(FormatError::Bad(format!(
                "a section name of {name_len} bytes"
            )));
        }
        let mut name = vec![0u8; name_len];
        read_exact(&mut self.input, &mut name)?;
        let len = u64::from_le_bytes(read_array(&mut self.input)?);
        if kind == 0 {
            return match (name_len, len) {
                (0, 0) => Ok(None),
                _ => Err(FormatError::Bad("a malformed end marker".into())),
            };
        }
        let kind = Kind::from_byte(kind)
            .ok_or_else(|| FormatError::Bad(format!("an unknown section kind {kind}")))?;
        let name = String::from_utf8(name)
            .map_err(|_| FormatError::Bad("a section name that is not UTF-8".into()))?;
        if kind == Kind::Manifest && len > MAX_MANIFEST {
            return Err(FormatError::Bad("an oversized manifest".into()));
        }
        Ok(Some(Section { kind, name, len }))
    }

    /// The current section's bytes.
    pub fn data(&mut self, len: u64) -> impl Read + '_ {
        (&mut self.input).take(len)
    }

    /// Reads a whole (small) section.
    pub fn data_to_vec(&mut self, len: u64) -> Result<Vec<u8>, FormatError> {
        let mut bytes = Vec::with_capacity(len.min(MAX_MANIFEST) as usize);
        self.data(len).read_to_end(&mut bytes)?;
        if bytes.len() as u64 != len {
            return Err(FormatError::Truncated);
        }
        Ok(bytes)
    }

    /// After the end marker: the checksum must match and nothing may follow it.
    pub fn finish(self) -> Result<(), FormatError> {
        let expected = self.input.hash.finalize();
        let mut inner = self.input.inner;
        let mut stored = [0u8; 32];
        read_exact(&mut inner, &mut stored)?;
        if stored[..] != expected[..] {
            return Err(FormatError::Checksum);
        }
        let mut extra = [0u8; 1];
        if inner.read(&mut extra)? != 0 {
            return Err(FormatError::Bad("bytes after its checksum".into()));
        }
        Ok(())
    }
}

fn read_exact(input: &mut impl Read, buf: &mut [u8]) -> Result<(), FormatError> {
    input.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => FormatError::Truncated,
        _ => FormatError::Io(e),
    })
}

fn read_array<const N: usize>(input: &mut impl Read) -> Result<[u8; N], FormatError> {
    let mut bytes = [0u8; N];
    read_exact(input, &mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut writer = BackupWriter::new(Vec::new()).expect("header");
        let manifest = br#"{"created_at":1,"confab":"test","schema":2}"#;
        writer
            .section(
                Kind::Manifest,
                Manifest::NAME,
                manifest.len() as u64,
                &mut &manifest[..],
            )
            .expect("manifest");
        writer
            .section(Kind::File, "ab/cd", 3, &mut &b"xyz"[..])
            .expect("file");
        writer.finish().expect("finish")
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<(Kind, String, Vec<u8>)>, FormatError> {
        let mut reader = BackupReader::new(bytes)?;
        let mut sections = Vec::new();
        while let Some(section) = reader.next_section()? {
            let data = reader.data_to_vec(section.len)?;
            sections.push((section.kind, section.name, data));
        }
        reader.finish()?;
        Ok(sections)
    }

    #[test]
    fn round_trips_sections() {
        let sections = read_all(&sample()).expect("a good backup reads back");
        assert_eq!(sections.len(), 2);
        assert_eq!(
            (
                sections[1].0,
                sections[1].1.as_str(),
                sections[1].2.as_slice()
            ),
            (Kind::File, "ab/cd", b"xyz".as_slice())
        );
    }

    #[test]
    fn any_flipped_byte_or_cut_is_caught() {
        let good = sample();
        for at in 0..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x40;
            assert!(
                read_all(&bad).is_err(),
                "a flip at byte {at} went unnoticed"
            );
        }
        for len in 0..good.len() {
            assert!(
                read_all(&good[..len]).is_err(),
                "cut at {len} went unnoticed"
            );
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(read_all(&longer).is_err());
    }
}
