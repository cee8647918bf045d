//! Files and pictures for the upload stories: raw uploads and downloads, pictures made on the
//! spot (a decompression bomb included), and the server's memory as the kernel reports it.

use std::io::Cursor;
use std::path::Path;

use reqwest::header::HeaderMap;

use super::{Client, Method, StatusCode, Value, send};

impl Client {
    /// `POST /api/conversations/{conversation}/uploads?name=…` with `bytes` as the body.
    pub async fn upload(
        &self,
        conversation: &str,
        name: &str,
        bytes: Vec<u8>,
    ) -> (StatusCode, Value) {
        let path = format!("/api/conversations/{conversation}/uploads");
        send(
            self.request(Method::POST, &path)
                .query(&[("name", name)])
                .body(bytes),
        )
        .await
    }

    /// Uploads and returns the file object, asserting 201.
    pub async fn uploaded(&self, conversation: &str, name: &str, bytes: Vec<u8>) -> Value {
        let (status, body) = self.upload(conversation, name, bytes).await;
        assert_eq!(status, StatusCode::CREATED, "upload {name}: {body}");
        body["file"].clone()
    }

    /// A GET whose body is kept as bytes (a file, a thumbnail, a picture).
    pub async fn get_bytes(&self, path: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
        let response = self
            .request(Method::GET, path)
            .send()
            .await
            .expect("send GET");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("read body").to_vec();
        (status, headers, bytes)
    }

    /// `PUT /api/me/avatar` with `bytes`.
    pub async fn put_avatar(&self, bytes: Vec<u8>) -> (StatusCode, Value) {
        send(self.request(Method::PUT, "/api/me/avatar").body(bytes)).await
    }
}

/// The URL path of a file (or, with `/thumb`, its thumbnail).
pub fn file_path(conversation: &str, file: &Value) -> String {
    format!(
        "/api/conversations/{conversation}/files/{}",
        file["id"].as_str().expect("file id")
    )
}

/// `len` bytes that are neither a picture nor a database, nor compress: a fixed
/// pseudo-random sequence (xorshift), the same every run.
pub fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// A PNG of `width` × `height` with some colour in it.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    let mut bytes = Vec::new();
    image::DynamicImage::from(image)
        .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
        .expect("encode PNG");
    bytes
}

/// A valid PNG of `width` × `height` zeros (8-bit, `channels` 1 = grey or 3 = RGB) whose
/// pixels take `width × height × channels` bytes once decoded, but whose file is tiny next to
/// that: a decompression bomb. The zlib stream is one fixed-Huffman block of 258-byte
/// back-references.
pub fn bomb_png(width: u32, height: u32, channels: u8) -> Vec<u8> {
    let raw = u64::from(height) * (1 + u64::from(width) * u64::from(channels));
    let mut bits = BitWriter::default();
    bits.push(1, 1); // last block
    bits.push(1, 2); // fixed Huffman
    bits.push_code(0x30, 8); // literal 0
    let mut left = raw - 1;
    while left >= 258 {
        bits.push_code(0xC5, 8); // length 258
        bits.push_code(0, 5); // distance 1
        left -= 258;
    }
    for _ in 0..left {
        bits.push_code(0x30, 8);
    }
    bits.push_code(0, 7); // end of block
    let mut zlib = vec![0x78, 0x01];
    zlib.extend(bits.finish());
    let adler = ((raw % 65521) << 16) as u32 | 1;
    zlib.extend(adler.to_be_bytes());

    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::new();
    header.extend(width.to_be_bytes());
    header.extend(height.to_be_bytes());
    let color_type = if channels == 3 { 2 } else { 0 };
    header.extend([8, color_type, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &header);
    chunk(&mut png, b"IDAT", &zlib);
    chunk(&mut png, b"IEND", &[]);
    png
}

fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    png.extend((data.len() as u32).to_be_bytes());
    let mut crc_input = kind.to_vec();
    crc_input.extend_from_slice(data);
    png.extend_from_slice(&crc_input);
    png.extend(crc32(&crc_input).to_be_bytes());
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Deflate's bit order: fields least significant bit first, Huffman codes most significant
/// first.
#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    current: u8,
    used: u8,
}

impl BitWriter {
    fn bit(&mut self, bit: u32) {
        self.current |= ((bit & 1) as u8) << self.used;
        self.used += 1;
        if self.used == 8 {
            self.bytes.push(self.current);
            self.current = 0;
            self.used = 0;
        }
    }

    fn push(&mut self, value: u32, count: u32) {
        for i in 0..count {
            self.bit(value >> i);
        }
    }

    fn push_code(&mut self, code: u32, count: u32) {
        for i in (0..count).rev() {
            self.bit(code >> i);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.used > 0 {
            self.bytes.push(self.current);
        }
        self.bytes
    }
}

/// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
pub fn memory_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Starts counting the peak RSS (`VmHWM`) from now.
pub fn reset_peak_memory(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("reset VmHWM");
}

/// Every blob file under `<data dir>/blobs` (not temp files).
pub fn blob_files(data_dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(shards) = std::fs::read_dir(data_dir.join("blobs")) else {
        return out;
    };
    for shard in shards.flatten() {
        if shard.file_name() == "tmp" {
            continue;
        }
        for file in std::fs::read_dir(shard.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            out.push(file.file_name().to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}
